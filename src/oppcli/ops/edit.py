"""`oppcli edit ID`: a deal opened in the user's editor as a document (domain/document.py),
checked as update checks its flags, and the fields a person changed written as one update.

    result = edit(session, 1001)                 # $VISUAL, else $EDITOR, else vi
    result = edit(session, 1001, launch=fake)    # tests and front ends: launch(path) -> status

The document goes into a private temporary directory (0700, the file 0600), removed when the
edit is done (written, nothing changed, cancelled) and kept when the edits could not be
written (an invalid document without a terminal, the deal changed meanwhile, a failure while
writing): the error says where. An invalid document on a terminal opens again with the
problems at the top. The deal is read again before the write (under the local store's lock):
if its date_modified moved since the editor opened, nothing is written (ConflictError).
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from oppcli.domain import document as D
from oppcli.errors import (
    ConfigError,
    ConflictError,
    Declined,
    NotFoundError,
    OppcliError,
    UsageError,
    ValidationError,
)

if TYPE_CHECKING:
    from oppcli.api import Session
    from oppcli.io import Streams

Record = dict[str, Any]
Launch = Callable[[Path], int]  # opens the file in an editor; returns the editor's exit status
DEFAULT_EDITOR = "vi"


@dataclass
class EditResult:
    """What an edit did: `record` is the deal as it is now; `changed` the document keys
    written (empty: nothing was); `cancelled` when the file was emptied."""

    record: Record
    changed: list[str] = field(default_factory=list)
    cancelled: bool = False

    @property
    def written(self) -> bool:
        return bool(self.changed)


# ---- the editor -----------------------------------------------------------------------------
def editor_command(env: Mapping[str, str]) -> list[str] | None:
    """$VISUAL, else $EDITOR, split as a shell would ("code --wait"); None when neither is
    set (vi, then)."""
    for var in ("VISUAL", "EDITOR"):
        text = (env.get(var) or "").strip()
        if text:
            try:
                argv = shlex.split(text)
            except ValueError as exc:
                raise ConfigError(f"cannot read ${var} {text!r}: {exc}",
                                  "fix its quoting") from None
            if argv:
                return argv
    return None


def launcher(streams: Streams) -> Launch:
    """Run the user's editor on a file and wait for it. It gets the terminal: its output goes
    to stderr when stdout is not a terminal (stdout carries only the record). Ctrl-C belongs
    to the editor while it runs (vi uses it), so oppcli ignores it meanwhile, as git does."""
    argv = editor_command(streams.env)
    if argv is None:
        if not streams.can_prompt:  # cron: vi would wait for keys that never come
            raise UsageError(f"no terminal to run {DEFAULT_EDITOR} on, and neither VISUAL nor "
                             "EDITOR is set", "run it on a terminal, or set EDITOR to a "
                             "program that edits the file it is given")
        argv = [DEFAULT_EDITOR]

    def launch(path: Path) -> int:
        out = None if streams.stdout_tty else streams.stderr
        try:
            proc = subprocess.Popen([*argv, str(path)], stdout=out)
        except OSError as exc:
            raise ConfigError(f"cannot run the editor {shlex.join(argv)!r}: "
                              f"{exc.strerror or exc}",
                              "set VISUAL or EDITOR to an editor that waits until the file "
                              "is closed, e.g. EDITOR=nano or VISUAL='code --wait'") from None
        ignoring = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if ignoring else None
        try:
            return proc.wait()
        finally:
            if ignoring:
                signal.signal(signal.SIGINT, signal.default_int_handler if previous is None
                              else previous)
    return launch


# ---- the edit -------------------------------------------------------------------------------
def edit(session: Session, opportunity: int | str, *, launch: Launch | None = None) -> EditResult:
    """Open a deal in the editor; write what a person changed (see the module's docstring)."""
    backend = session.backend
    opp_id = session.find_id(opportunity)
    current = backend.get(opp_id)
    backend.check_writable()  # a read-only store or an audit log that cannot be written: say so
    backend.log.check()       # before anyone spends time editing
    lookups = backend.lookups()
    text = D.render(current, lookups, backend.date_order())
    original = D.parse(text)
    launch = launch or launcher(session.streams)
    file = _Scratch(opp_id, text)
    try:
        result = _edit(session, current, original, file, launch)
    except BaseException as exc:
        if file.edited:
            if isinstance(exc, OppcliError):
                exc.hint = (f"{exc.hint}; " if exc.hint else "") + file.kept_note(opp_id)
        else:
            file.remove()
        raise
    file.remove()
    return result


def _edit(session: Session, current: Record, original: dict[str, Any], file: _Scratch,
          launch: Launch) -> EditResult:
    streams = session.streams
    opp_id = int(current["id"])
    shown_errors = False
    while True:
        status = launch(file.path)
        if status != 0:
            file.look()
            raise UsageError(f"the editor exited with status {status}: nothing changed")
        text = file.read()
        if D.is_blank(text):
            file.edited = False
            raise Declined("edit cancelled (the file was emptied): nothing changed")
        try:
            changes, keys = _checked(session, current, original, D.strip_errors(text))
        except D.DocumentError as bad:
            # Saved as we wrote it after showing the errors: the person gave up on fixing it.
            again = shown_errors and text == file.written
            if streams.can_prompt and not again:
                file.write(D.with_errors(text, bad.problems))
                shown_errors = True
                continue
            for problem in bad.problems:
                streams.notice(f"- {problem}")
            count = len(bad.problems)
            raise UsageError(f"the edited opportunity {opp_id} is not valid ({count} "
                             f"problem{'s' if count > 1 else ''} above): nothing changed") \
                from None
        if not changes:
            return EditResult(current)
        file.edited = True  # (also a write that failed keeps them)
        return EditResult(_write(session, current, changes, keys), keys)


def _checked(session: Session, current: Record, original: dict[str, Any],
             text: str) -> tuple[dict[str, Any], list[str]]:
    """The document read and checked: (the changes as update applies them, the keys changed);
    ({}, []) when nothing really changes. DocumentError lists every problem found."""
    from oppcli.domain.records import apply_changes, changed_fields, check_refs, refs_to_check

    backend = session.backend
    lookups = backend.lookups()
    edits, problems = D.edits(original, D.parse(text), lookups)
    changes: dict[str, Any] = {}
    for one in edits:
        try:
            given, base = D.request(one, lookups, session.date_order)
            asked = session.changes(given, base=base,
                                    context_pipeline=current.get("pipeline_id"))
        except (ValidationError, NotFoundError, ConflictError) as exc:  # a name or a value
            said = str(exc)
            named = said.startswith((one.key, one.label, D.field_of(one.key)))
            problems.append(said if named and one.custom is None else f"{one.label}: {said}")
            continue
        custom = asked.pop(D.CUSTOM, None)
        changes.update(asked)
        if custom:
            changes.setdefault(D.CUSTOM, []).extend(custom)
    if not problems and changes:
        try:
            after = apply_changes(current, changes, lookups)
            body = changed_fields(current, after)
            check_refs(refs_to_check(body, after), lookups)
        except (ValidationError, NotFoundError) as exc:
            problems.append(str(exc))
        else:
            if not body:
                return {}, []
    if problems:
        raise D.DocumentError(problems)
    return changes, [e.label for e in edits]


def _write(session: Session, opened: Record, changes: dict[str, Any], keys: list[str]) -> Record:
    """The update, if the deal is as it was when the editor opened (read again under the
    local store's lock; Copper has none: there the read and the write are two requests)."""
    backend = session.backend
    opp_id = int(opened["id"])
    with backend.exclusive():
        now = backend.get(opp_id)
        if now.get("date_modified") != opened.get("date_modified"):
            raise ConflictError(f"opportunity {opp_id} changed while it was being edited "
                                f"(date_modified {opened.get('date_modified')} -> "
                                f"{now.get('date_modified')}): nothing written",
                                f"your changes ({', '.join(keys)}) were not applied")
        return backend.update(opp_id, changes, now)


class _Scratch:
    """The file the editor opens: in a new private directory (0700), the file 0600."""

    def __init__(self, opp_id: int, text: str) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix=f"oppcli-edit-{opp_id}-"))
        self.path = self.dir / f"opportunity-{opp_id}.toml"
        self.original = text
        self.written = ""  # what oppcli wrote last (the document, or it with the errors)
        self.edited = False  # the file holds edits a person would not want to lose
        self.write(text, create=True)

    def write(self, text: str, *, create: bool = False) -> None:
        flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if create else os.O_TRUNC)
        fd = os.open(self.path, flags, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        self.written = text

    def read(self) -> str:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            self.edited = False
            return ""  # the editor deleted it: as emptied
        except OSError as exc:
            self.edited = True
            raise UsageError(f"cannot read {self.path}: {exc.strerror}") from exc
        try:
            text = data.decode("utf-8-sig")  # a BOM some editors add is no edit
        except UnicodeDecodeError as exc:
            self.edited = True
            raise UsageError(f"{self.path} is not UTF-8 text ({exc.reason} at byte "
                             f"{exc.start})", "save it as UTF-8") from None
        self.edited = text != self.original
        return text

    def look(self) -> None:
        """Whether the file holds edits, after an editor that failed."""
        try:
            self.read()
        except UsageError:
            pass

    def kept_note(self, opp_id: int) -> str:
        return (f"your edit is kept in {self.path}: run `oppcli edit {opp_id}` again and "
                "make the changes there (that file shows them)")

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
