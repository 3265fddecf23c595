"""Bulk changes: update or delete many deals in one command, previewed, confirmed, written
at the backend's full speed, recorded as one batch in the audit log, and undone as one.

    plan = plan_update(session, Selection(...), changes)   # reads; changes nothing
    result = apply(session, plan)                           # writes; BulkResult

A plan holds, per deal, what would change (field -> [before, after]); a deal that already has
the values is left out (it costs no write). apply() writes through Backend.update_many /
delete_many (the local store: one pass, one atomic replace; Copper: one PUT per deal, several
in flight, paced) inside one audit batch, with Ctrl-C and SIGTERM held so every deal written
is recorded; it reports what was changed, what failed and what was not done.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from oppcli import errors as E
from oppcli.backends.base import Change, Outcome
from oppcli.domain import fields as F
from oppcli.errors import UsageError, ValidationError

if TYPE_CHECKING:
    from oppcli.api import Session
    from oppcli.io import Streams
    from oppcli.ops.audit import Audited
    from oppcli.util.interrupts import Held

Record = dict[str, Any]
SHOWN = 5  # deals named in a prompt


# ---- which deals --------------------------------------------------------------------------------
@dataclass
class Selection:
    """The deals a bulk command works on: ids (arguments, or read from stdin), records (read
    from stdin: they carry their own state), or search filters (`where`). One kind only."""

    ids: list[int] = field(default_factory=list)
    records: list[Record] = field(default_factory=list)
    where: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        kinds = sum(1 for x in (self.ids or self.records, self.where) if x)
        if kinds > 1:
            raise UsageError("give ids (or - for stdin) or --where-* filters, not both",
                             "--saved selects as --where-* does; to narrow ids by a filter, pipe "
                             "`oppcli search --id ... FILTERS -o jsonl` in")


def read_selection(data: bytes, where: str = "stdin") -> Selection:
    """What `-` reads: JSON records (an array, or JSON Lines, as search, list and export print
    them), or ids, one per line (or a JSON array of ids). Each deal once, in the order given."""
    import orjson

    text = data.strip()
    items: list[Any] = []
    if text.startswith(b"["):
        try:
            parsed = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise ValidationError(f"malformed JSON array on {where}: {exc}",
                                  "check it with jq .") from None
        items = [(n, v) for n, v in enumerate(parsed, 1)]
        label = "item"
    else:
        label = "line"
        for n, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line:
                continue
            if line.startswith(b"{"):
                try:
                    items.append((n, orjson.loads(line)))
                except orjson.JSONDecodeError as exc:
                    raise ValidationError(f"{where} line {n} is not valid JSON: {exc}",
                                          "give JSON records (one per line) or ids") from None
            else:
                items.append((n, line.decode("utf-8", "replace")))
    ids: dict[int, None] = {}
    records: dict[int, Record] = {}
    for n, item in items:
        if isinstance(item, dict):
            ident = item.get("id")
            if type(ident) is not int or ident < 1:
                raise ValidationError(f"{where} {label} {n} is a JSON object without a whole-"
                                      "number id", "give records as oppcli prints them, or ids")
            records.setdefault(ident, item)
        elif type(item) is int or (isinstance(item, str) and item.isdigit()):
            ids.setdefault(int(item), None)
        else:
            shown = str(item)[:40]
            raise ValidationError(f"{where} {label} {n} is neither an id nor a JSON record: "
                                  f"{shown!r}", "give ids one per line, or JSON records")
    if ids and records:  # a mix: the ids are read from the backend like arguments
        ids.update(dict.fromkeys(records))
        return Selection(ids=list(ids))
    return Selection(ids=list(ids), records=list(records.values()))


# ---- the plan --------------------------------------------------------------------------------
@dataclass
class Preview:
    """One deal of a plan or result: its id, name, and field -> [before, after]."""

    id: int
    name: Any
    changes: dict[str, list[Any]] = field(default_factory=dict)
    error: str | None = None

    def as_json(self, state: str | None = None, op: str = "update") -> dict[str, Any]:
        """{"id", "name", "changes"} (a delete: {"id", "name", "is_deleted"}), with "result"
        and "error" after a run."""
        out: dict[str, Any] = {"id": self.id, "name": self.name}
        if op == "delete":
            if state is not None:
                out["is_deleted"] = state == "deleted"
        else:
            out["changes"] = self.changes
        if state is not None:
            out["result"] = state
        if self.error is not None:
            out["error"] = self.error
        return out


@dataclass
class Plan:
    op: str  # "update" or "delete"
    items: list[Change]  # the deals to write, in order
    previews: list[Preview]  # what each would change (same order)
    unchanged: list[Preview]  # deals that already have the values
    asked: list[str]  # the changes as asked, for people ("stage=Negotiation")

    def __len__(self) -> int:
        return len(self.items)


def plan_update(session: Session, selection: Selection, given: Mapping[str, Any],
                base: Mapping[str, Any] | None = None) -> Plan:
    """What an update of the selected deals would change, deal by deal; nothing is written.
    ValidationError / NotFoundError (nothing changed) for changes that cannot apply."""
    from oppcli.domain.records import apply_changes, changed_fields, check_refs, diff, refs_to_check

    backend = session.backend
    lookups = backend.lookups()
    if not given and not base:
        raise UsageError("nothing to change", "give at least one field option, e.g. --status "
                         "Won; see `oppcli update --help`")
    for_pipeline = _changes_for(session, given, base)
    needed = _needed_fields({*for_pipeline(None), *(["pipeline_stage_id"] if "stage" in given
                                                    else [])})
    plan = Plan("update", [], [], [], _asked(given, base))
    for current in _selected(session, selection, needed):
        changes = for_pipeline(current.get("pipeline_id"))
        after = apply_changes(current, changes, lookups)
        body = changed_fields(current, after)
        check_refs(refs_to_check(body, after), lookups)
        changed = diff(current, after, body)
        preview = Preview(int(current["id"]), current.get("name"), changed)
        if not changed:
            plan.unchanged.append(preview)
            continue
        plan.previews.append(preview)
        plan.items.append(Change(preview.id, changes, current, (after, body)))
    return plan


def plan_delete(session: Session, selection: Selection) -> Plan:
    """The deals a delete would remove; nothing is written. NotFoundError for an unknown id."""
    plan = Plan("delete", [], [], [], [])
    for current in _selected(session, selection, set(F.FIELD_NAMES)):
        preview = Preview(int(current["id"]), current.get("name"))
        plan.previews.append(preview)
        plan.items.append(Change(preview.id, current=current))
    return plan


def _changes_for(session: Session, given: Mapping[str, Any],
                 base: Mapping[str, Any] | None) -> Any:
    """pipeline id -> the changes for a deal in that pipeline (a stage name two pipelines
    share is read in the deal's own), computed once per pipeline."""
    cache: dict[Any, dict[str, Any]] = {}

    def for_pipeline(pipeline: int | None) -> dict[str, Any]:
        key = pipeline if "stage" in given else None
        if key not in cache:
            try:
                cache[key] = session.changes(given, base=base, context_pipeline=key)
            except E.ConflictError:
                if key is None:  # ambiguous without a deal: each deal resolves it
                    cache[key] = {}
                else:
                    raise
        return cache[key]

    return for_pipeline


def _needed_fields(changes: Iterable[str]) -> set[str]:
    """The fields a record at hand must hold for the change to be planned without reading it
    again: those changed, and what a stage change derives from."""
    needed = {"id", "date_modified", *changes}
    if {"pipeline_id", "pipeline_stage_id"} & needed:
        needed |= {"pipeline_id", "pipeline_stage_id", "win_probability"}
    return needed


def _selected(session: Session, selection: Selection, needed: set[str]) -> Iterator[Record]:
    """The selected deals as records to plan from: a search's own; records at hand when the
    backend is remote and they hold every needed field; otherwise read (one pass locally,
    requests in flight on Copper). NotFoundError, before anything is written, for an id that
    is not there."""
    backend = session.backend
    if selection.where:
        field_, descending = backend.stream_order
        yield from backend.search(session.query(sort=field_, asc=not descending,
                                                **selection.where))
        return
    at_hand: dict[int, Record] = {}
    if backend.remote:
        at_hand = {int(r["id"]): r for r in selection.records if needed <= r.keys()}
    order = selection.ids or [int(r["id"]) for r in selection.records]
    fetched = backend.get_many([i for i in order if i not in at_hand])
    missing = [i for i in order if i not in at_hand and i not in fetched]
    if missing:
        shown = ", ".join(map(str, missing[:10])) + (f" and {len(missing) - 10} more"
                                                      if len(missing) > 10 else "")
        raise E.NotFoundError(f"no opportunit{'y' if len(missing) == 1 else 'ies'} with id "
                              f"{shown}; nothing was changed",
                              "`oppcli search` shows the ids; leave those out")
    for i in order:
        yield at_hand.get(i) or fetched[i]


def _asked(given: Mapping[str, Any], base: Mapping[str, Any] | None) -> list[str]:
    out = [f"{k}={','.join(map(str, v)) if isinstance(v, list) else v}"
           for k, v in given.items() if v is not None]
    if base:
        out.append("from JSON: " + ", ".join(base))
    return out


# ---- writing -----------------------------------------------------------------------------------
@dataclass
class BulkResult:
    op: str
    batch: str | None = None  # the audit batch (what `oppcli undo` takes)
    changed: list[Preview] = field(default_factory=list)  # written (deleted, for a delete)
    unchanged: list[Preview] = field(default_factory=list)  # had the values already
    failed: list[Preview] = field(default_factory=list)  # refused or gone (error set)
    not_done: list[Preview] = field(default_factory=list)  # a stop came first
    stopped: BaseException | None = None  # what ended the run early (a signal, Copper failing)
    dry_run: bool = False
    leftovers: Path | None = None  # the ids not changed, one per line, to run again

    def rows(self) -> Iterator[dict[str, Any]]:
        """One object per deal: id, name, result, changes (and error)."""
        done = {"update": "changed", "delete": "deleted", "create": "brought back"}[self.op]
        if self.dry_run:
            done = "would be " + done
        for state, group in ((done, self.changed), ("unchanged", self.unchanged),
                             ("failed", self.failed), ("not done", self.not_done)):
            for p in group:
                yield p.as_json(state, self.op)

    @property
    def exit_code(self) -> int:
        from oppcli.util.interrupts import exit_code_of

        if self.stopped is not None:
            return exit_code_of(self.stopped) or E.SERVICE
        return E.PARTIAL if self.failed else 0

    def check(self) -> None:
        """Raise what the result means for a caller who wants an exception: the stop, or a
        PartialFailure (exit 7) when some deals failed."""
        if self.stopped is not None:
            raise self.stopped
        if self.failed:
            raise E.PartialFailure(self.summary(), self.hint())

    def summary(self) -> str:
        verb = {"update": "updated", "delete": "deleted", "create": "brought back"}[self.op]
        if self.dry_run:
            verb = {"create": "would bring back"}.get(self.op, "would " + self.op)
        parts = [f"{verb} {_count(len(self.changed))}"]
        if self.unchanged:
            parts.append(f"{len(self.unchanged):,} already had the values")
        if self.failed:
            parts.append(f"{len(self.failed):,} failed")
        if self.not_done:
            parts.append(f"{len(self.not_done):,} not done")
        return ", ".join(parts)

    def hint(self) -> str:
        if self.leftovers is not None:
            again = "`oppcli update - CHANGES <" if self.op == "update" else "`oppcli delete - <"
            return f"the ids not {self.op}d are in {self.leftovers}: {again} {self.leftovers}` " \
                "runs them again"
        return "see the messages above"


def _count(n: int) -> str:
    return f"{n:,} opportunit{'y' if n == 1 else 'ies'}"


def apply(backend: Audited, streams: Streams, plan: Plan, *, leftovers: Path | None = None,
          undo_of: Mapping[int, str] | None = None) -> BulkResult:
    """Write a plan as one audit batch; returns what happened (see BulkResult). Ctrl-C and
    SIGTERM stop it between writes (Copper) or after the one write (the local store); a
    second signal stops at once. The result's `stopped` holds a stop; nothing is raised for
    it, so the caller can report first (BulkResult.check raises it). `undo_of`: deal id ->
    the audit entry each change takes back (an undo of a batch)."""
    result = BulkResult(plan.op, unchanged=list(plan.unchanged))
    previews = {p.id: p for p in plan.previews}
    told: set[int] = set()
    bar = streams.progress("updating" if plan.op == "update" else "deleting",
                           total=len(plan.items))

    def done(outcome: Outcome) -> None:
        told.add(outcome.id)
        preview = previews[outcome.id]
        if outcome.error is not None:
            preview.error = outcome.error.message
            result.failed.append(preview)
        elif outcome.state == "unchanged":
            preview.changes = {}
            result.unchanged.append(preview)
        else:
            if outcome.state == "changed" and outcome.before is not None and \
                    outcome.after is not None:
                preview.changes = _changes_in(outcome.before, outcome.after)
            result.changed.append(preview)
        bar.step()

    write = backend.update_many if plan.op == "update" else backend.delete_many
    try:
        with stoppable(streams, result) as held, backend.batch(undo_of) as batch, held.unit():
            result.batch = batch.id
            write(plan.items, done, lambda: held.pending is not None)
    finally:
        bar.done()
    result.not_done = [previews[c.id] for c in plan.items if c.id not in told]
    if not result.changed:
        result.batch = None
    if result.failed or result.not_done:
        result.leftovers = _save_leftovers(plan.op, leftovers,
                                           [*result.failed, *result.not_done], streams)
    return result


@contextlib.contextmanager
def stoppable(streams: Streams, result: BulkResult) -> Iterator[Held]:
    """Ctrl-C and SIGTERM held for the block's units (held.unit()): the unit under way
    finishes, then the stop is raised (held.check(), also on leaving the block). A stop, or
    an error that ends the run, is kept in result.stopped, not raised: the caller reports
    first and BulkResult.check() raises it."""
    from oppcli.util.interrupts import Held, Stop

    message = ("\noppcli: stopping: the changes under way finish first and are recorded; "
               "Ctrl-C again to stop at once\n")
    with Held(tell=streams.stderr.write if streams.stderr_tty else None,
              message=message) as held:
        try:
            yield held
            held.check()
        except (Stop, KeyboardInterrupt, E.OppcliError) as exc:
            result.stopped = exc


def _changes_in(before: Record, after: Record) -> dict[str, list[Any]]:
    """field -> [before, after] from an outcome's trimmed records (records.trimmed: the fields
    the change touched, beside id, name, date_modified and win_probability)."""
    return {k: [before.get(k), v] for k, v in after.items()
            if k not in ("id", "date_modified") and before.get(k) != v}


def _save_leftovers(op: str, path: Path | None, deals: Iterable[Preview],
                    streams: Streams) -> Path | None:
    """The ids not changed, one per line, in a new file (never an existing one overwritten):
    `oppcli update - ... < FILE` runs them again."""
    from oppcli.util.files import write_new_file

    if path is None:
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        path = Path(f"oppcli-{op}-not-done-{stamp}.txt")
    try:
        return write_new_file(path, "".join(f"{p.id}\n" for p in deals).encode())
    except OSError as exc:
        streams.warn(f"cannot write {path}: {exc.strerror or exc}; the ids are in the output")
        return None

