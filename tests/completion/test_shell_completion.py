"""Completion in real shells: bash (with bash-completion), zsh and fish, driving each shell's own
completion machinery with the scripts in completions/ and the installed `oppcli` first on PATH.

What each harness really runs, and what it stands in for:

- bash: `bash --norc --noprofile -c` sources bash-completion and completions/oppcli.bash, finds
  the function `complete -p oppcli` registered, sets COMP_WORDS/COMP_CWORD/COMP_LINE/COMP_POINT
  and calls it as readline would (`func oppcli CUR PREV`), then prints COMPREPLY. Readline is
  the one thing stood in for: the line is split into COMP_WORDS here, in Python, at the
  COMP_WORDBREAKS bash reports once bash-completion is loaded (so `Region=E` is the three words
  `Region`, `=`, `E`, as readline makes it). `test_bash_harness_matches_interactive_bash` checks
  that stand-in against a real interactive bash in a pty: the same lines typed with a TAB, the
  COMP_WORDS/COMP_CWORD readline produced and the COMPREPLY the function returned, recorded by
  a wrapper around the registered function. `test_bash_inserts_on_the_line` reads what TAB
  actually leaves on the readline line (READLINE_LINE through a `bind -x` key).
- zsh: `zsh -f` starts an interactive `zsh -f -i` in a zpty, runs `compinit` (compdump in a
  temporary ZDOTDIR), loads completions/oppcli.zsh, types the line and a TAB bound to
  complete-word. Everything is zsh's own: zle splits the line, _main_complete dispatches through
  compdef to the script's function, which evals oppcli's `_arguments` answer. Only the builtin
  `compadd` is wrapped (after zsh-capture-completion): the wrapper calls `builtin compadd -A`,
  so zsh's matching against the word being completed still decides the hits, and prints them
  instead of inserting them. Markers from compprefuncs/comppostfuncs frame the output, so an
  error message oppcli printed to the terminal would show up as an extra line.
  `test_zsh_inserts_on_the_line` runs with nothing wrapped and reads $BUFFER after the TAB.
- fish: `fish --no-config -c 'source completions/oppcli.fish; complete -C LINE'`: fish's own
  completion engine (condition, argument command, its own filtering); descriptions after a tab
  are dropped.

Every shell runs in an empty working directory, so the file-name fallback all three scripts
leave on (bash `-o default`, zsh `_files`, fish when the condition fails) offers nothing.
"""

from __future__ import annotations

import os
import re
import select
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import build_store, derived_records, oppcli_exe

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = {shell: ROOT / "completions" / f"oppcli.{shell}" for shell in ("bash", "zsh", "fish")}
BASH_COMPLETION = Path("/usr/share/bash-completion/bash_completion")
TIMEOUT = 30  # seconds, per shell subprocess
BIG_TIMEOUT = 60  # one completion against the 100,000-record store

needs_bash = pytest.mark.skipif(
    shutil.which("bash") is None or not BASH_COMPLETION.exists(),
    reason="bash or bash-completion (/usr/share/bash-completion/bash_completion) is not installed")
needs_zsh = pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed")
needs_fish = pytest.mark.skipif(shutil.which("fish") is None, reason="fish is not installed")
SHELLS = [pytest.param("bash", marks=needs_bash), pytest.param("zsh", marks=needs_zsh),
          pytest.param("fish", marks=needs_fish)]

COMMANDS = {"init", "list", "search", "show", "create", "update", "delete", "lookups", "config",
            "auth", "export", "import", "sync", "history", "undo", "report", "forecast", "stale",
            "saved", "edit", "api", "mcp"}
USERS = ["Ada Park", "Ben Okafor", "Carla Reyes", "Dev Raman"]
EMAILS = ["ada.park@example.com", "ben.okafor@example.com", "carla.reyes@example.com",
          "dev.raman@example.com"]
REGIONS = ["Region=EMEA", "Region=Americas", "Region=APAC"]


# ---- fixtures ---------------------------------------------------------------------------------
def _clean_environ() -> dict[str, str]:
    drop = ("BASH_ENV", "ENV", "PROMPT_COMMAND", "ZDOTDIR", "CDPATH", "INPUTRC")
    return {k: v for k, v in os.environ.items()
            if k not in drop and not k.startswith(("_OPPCLI", "_TYPER", "OPPCLI_", "COPPER_"))}


def _files(store: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(store.iterdir()) if p.name != ".lock"}


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Home, ZDOTDIR (one compdump for the module) and an empty working directory."""
    base = tmp_path_factory.mktemp("shell-completion")
    for sub in ("home", "zdotdir", "cwd", "config"):
        (base / sub).mkdir()
    return base


@pytest.fixture(scope="module")
def sample_store(scratch: Path) -> Iterator[Path]:
    """A store made by the installed `oppcli init --sample`, shared by this module's tests;
    checked byte for byte at the end (completing must never write)."""
    path = scratch / "sample-store"
    env = _clean_environ()
    env.update(OPPCLI_STORE=str(path), OPPCLI_CONFIG_DIR=str(scratch / "config"))
    proc = subprocess.run([oppcli_exe(), "init", "--sample"], env=env, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stderr
    before = _files(path)
    yield path
    assert _files(path) == before, "completion changed the sample store"


@pytest.fixture(scope="module")
def big_store(scratch: Path) -> Path:
    """100,000 records derived from the sample ones, ids 100001..200000."""
    path = scratch / "big-store"
    build_store(path, derived_records(100_000, first_id=100_001))
    return path


@pytest.fixture(scope="module")
def bash_wordbreaks() -> str:
    """COMP_WORDBREAKS once bash-completion is loaded (it takes `@` out of bash's default)."""
    if shutil.which("bash") is None or not BASH_COMPLETION.exists():
        pytest.skip("bash or bash-completion is not installed")
    proc = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c",
         f'source {BASH_COMPLETION} >/dev/null 2>&1; printf %s "$COMP_WORDBREAKS"'],
        capture_output=True, text=True, env=_clean_environ(), timeout=TIMEOUT)
    assert proc.returncode == 0 and "=" in proc.stdout, proc
    return proc.stdout


# ---- the harnesses ------------------------------------------------------------------------------
@dataclass
class Completion:
    shell: str
    line: str
    candidates: list[str]
    noise: list[str] = field(default_factory=list)  # anything printed besides candidates
    returncode: int = 0

    def ok(self) -> list[str]:
        """The candidates, after checking the shell exited 0 and nothing else was printed."""
        assert self.returncode == 0, f"{self.shell} {self.line!r}: exit {self.returncode}\n{self.noise}"
        assert not self.noise, f"{self.shell} {self.line!r} printed more than candidates: {self.noise}"
        return self.candidates


def bash_words(line: str, wordbreaks: str) -> list[str]:
    """COMP_WORDS as readline makes them: split at blanks, and each run of the other
    COMP_WORDBREAKS characters is a word of its own. The last word is the one being completed
    (an empty one after a trailing blank). Quotes are not modelled: the lines here have none."""
    assert not set(line) & set("\"'\\"), "bash_words does not model quoting"
    breaks = re.escape("".join(c for c in wordbreaks if not c.isspace()))
    words = re.findall(rf"[^\s{breaks}]+|[{breaks}]+", line)
    if not words or line[-1].isspace():
        words.append("")
    return words


BASH_HARNESS = r"""
source "$BASH_COMPLETION_FILE" || exit 90
declare -F _init_completion >/dev/null || declare -F _comp_initialize >/dev/null || exit 91
source "$OPPCLI_COMPLETION_SCRIPT" || exit 92
spec=$(complete -p oppcli) || exit 93
[[ $spec =~ -F\ ([^ ]+) ]] || exit 94
func=${BASH_REMATCH[1]}
COMP_LINE=$1; COMP_POINT=${#COMP_LINE}; shift
COMP_WORDS=("$@"); COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 )); COMP_TYPE=9; COMP_KEY=9
COMPREPLY=()
"$func" "${COMP_WORDS[0]}" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
rc=$?
for c in "${COMPREPLY[@]}"; do printf 'C\t%s\n' "$c"; done
exit $rc
"""

ZSH_INIT = r"""
PROMPT= RPROMPT= PS2=
if [[ $OPPCLI_TEST_ZSH_LOAD == fpath ]]; then  # the README's install: _oppcli on $fpath
  fpath=( "$OPPCLI_TEST_FPATH" $fpath )
fi
autoload -Uz compinit && compinit -u -d "$ZDOTDIR/.zcompdump-$OPPCLI_TEST_ZSH_LOAD"
if [[ $OPPCLI_TEST_ZSH_LOAD == source ]]; then
  source "$OPPCLI_COMPLETION_SCRIPT"
fi
bindkey '^M' undefined
bindkey '^J' undefined
bindkey '^I' complete-word
_test_marker() { echo -E - $'\0' }
compprefuncs=( _test_marker )
comppostfuncs=( _test_marker exit )
zmodload zsh/zutil
compadd() {
  # calls that only ask (-O, -A, -D: store matches in an array) go straight to the builtin
  if [[ ${@[1,(i)(-|--)]} == *-(O|A|D)\ * ]]; then
    builtin compadd "$@"
    return $?
  fi
  local -a __hits
  builtin compadd -A __hits "$@"
  setopt localoptions norcexpandparam extendedglob
  typeset -A apre hpre
  zparseopts -E P:=apre p:=hpre
  local h
  for h in $__hits; do echo -E - "C"$'\t'"$IPREFIX$apre$hpre$h"; done
  (( $#__hits ))
}
echo ok
"""

ZSH_DRIVER = r"""
zmodload zsh/zpty || exit 90
zpty z zsh -f -i || exit 91
zpty -w z "source ${(q)1}"
local line
while zpty -r z line; do [[ $line == ok* ]] && break; done
[[ $line == ok* ]] || exit 92
zpty -n -w z "$2"$'\t'
integer marks=0
while zpty -r z line; do
  if [[ $line == *$'\0'* ]]; then
    (( ++marks == 2 )) && exit 0
    continue
  fi
  (( marks == 1 )) && print -r -- "$line"
done
exit 93
"""


class Shells:
    """Complete a command line in a shell, with the installed oppcli first on PATH."""

    def __init__(self, scratch: Path, store: Path, wordbreaks: Callable[[], str]) -> None:
        self.scratch = scratch
        self.store = store
        self._wordbreaks = wordbreaks
        (scratch / "bash-harness.sh").write_text(BASH_HARNESS)
        (scratch / "zsh-init.zsh").write_text(ZSH_INIT)
        (scratch / "zsh-driver.zsh").write_text(ZSH_DRIVER)
        fpath_dir = scratch / "zfunc"
        fpath_dir.mkdir(exist_ok=True)
        shutil.copyfile(SCRIPTS["zsh"], fpath_dir / "_oppcli")  # the README's zsh install

    def env(self, store: Path | None = None, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = _clean_environ()
        # what the test's `isolated` fixture set (config dir, data dir), but none of the user's
        env.update({k: os.environ[k] for k in ("OPPCLI_CONFIG_DIR", "XDG_DATA_HOME") if k in os.environ})
        home = self.scratch / "home"
        env.update(
            PATH=os.path.dirname(oppcli_exe()) + os.pathsep + env.get("PATH", os.defpath),
            OPPCLI_STORE=str(store or self.store), HOME=str(home),
            XDG_CONFIG_HOME=str(home / ".config"), ZDOTDIR=str(self.scratch / "zdotdir"),
            TERM="xterm", LC_ALL="C.UTF-8", COLUMNS="200",
            BASH_COMPLETION_FILE=str(BASH_COMPLETION))
        env.update(extra or {})
        return env

    def complete(self, shell: str, line: str, *, store: Path | None = None,
                 env: dict[str, str] | None = None, timeout: float = TIMEOUT,
                 zsh_load: str = "source") -> Completion:
        full_env = self.env(store, env)
        full_env["OPPCLI_COMPLETION_SCRIPT"] = str(SCRIPTS[shell])
        cwd = self.scratch / "cwd"
        if shell == "bash":
            words = bash_words(line, self._wordbreaks())
            argv = ["bash", "--norc", "--noprofile", str(self.scratch / "bash-harness.sh"),
                    line, *words]
        elif shell == "zsh":
            full_env["OPPCLI_TEST_ZSH_LOAD"] = zsh_load
            full_env["OPPCLI_TEST_FPATH"] = str(self.scratch / "zfunc")
            argv = ["zsh", "-f", str(self.scratch / "zsh-driver.zsh"),
                    str(self.scratch / "zsh-init.zsh"), line]
        else:
            argv = ["fish", "--no-config", "-c",
                    'source $OPPCLI_COMPLETION_SCRIPT; and complete -C $argv[1]', line]
        proc = subprocess.run(argv, env=full_env, cwd=cwd, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=timeout)
        candidates, noise = [], [ln for ln in proc.stderr.splitlines() if ln.strip()]
        for raw in proc.stdout.splitlines():
            text = raw.replace("\r", "").replace("\a", "")
            if shell == "fish":
                candidates.append(text.split("\t", 1)[0])
            elif text.startswith("C\t"):
                candidates.append(text[2:])
            elif text.strip():
                noise.append(text)
        return Completion(shell, line, candidates, noise, proc.returncode)


@pytest.fixture
def shells(isolated: Path, scratch: Path, sample_store: Path, request: pytest.FixtureRequest) -> Shells:
    return Shells(scratch, sample_store, lambda: request.getfixturevalue("bash_wordbreaks"))


def zsh_quoted(value: str) -> str:
    """How zsh (and oppcli's bash script) offer and insert a candidate: blanks backslash-quoted."""
    return value.replace(" ", "\\ ")


# ---- candidates offered, per shell ---------------------------------------------------------------
@pytest.mark.parametrize("shell", SHELLS)
def test_each_shell_finds_the_installed_oppcli_first(shells, shell):
    probe = {"bash": ["bash", "--norc", "--noprofile", "-c", "type -P oppcli"],
             "zsh": ["zsh", "-f", "-c", "whence -p oppcli"],
             "fish": ["fish", "--no-config", "-c", "command -s oppcli"]}[shell]
    proc = subprocess.run(probe, env=shells.env(), capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.stdout.strip() == oppcli_exe()


@pytest.mark.parametrize("shell", SHELLS)
def test_subcommands_after_the_program_name(shells, shell):
    assert set(shells.complete(shell, "oppcli ").ok()) == COMMANDS


CASES = [
    ("oppcli search --status ", ["Open", "Won", "Lost", "Abandoned"]),
    ("oppcli list -o j", ["json", "jsonl"]),
    ("oppcli list --fields id,mon", ["id,monetary_value"]),
    ("oppcli search --stage Sales/N", ["Sales/Negotiation"]),
    ("oppcli show 100", [str(i) for i in range(1001, 1010)]),
    ("oppcli search --custom-field Reg", ["Region="]),
    ("oppcli search --custom-field Region=", REGIONS),
    ("oppcli search --custom-field Region=E", ["Region=EMEA"]),
    ("oppcli report --by close-", ["close-month", "close-quarter"]),
    ("oppcli auth lo", ["login", "logout"]),
    ("oppcli api P", ["POST", "PUT", "PATCH"]),
]


@pytest.mark.parametrize(("shell", "line", "expected"), [
    pytest.param(p.values[0], line, expected, marks=p.marks,
                 id=f"{p.values[0]}-{line}")
    for p in SHELLS for line, expected in CASES])
def test_values_offered(shells, shell, line, expected):
    if shell == "bash" and "=" in line.split()[-1]:
        # readline replaces only the text after the `=` (COMP_WORDBREAKS), so that is what
        # bash is offered; test_bash_inserts_on_the_line checks the whole line after TAB.
        expected = [e.split("=", 1)[1] for e in expected]
    assert sorted(shells.complete(shell, line).ok()) == sorted(expected)


@pytest.mark.parametrize("shell", SHELLS)
def test_assignee_offers_user_names_and_emails(shells, shell):
    names = [zsh_quoted(n) for n in USERS] if shell in ("zsh", "bash") else USERS
    got = shells.complete(shell, "oppcli search --assignee ").ok()
    assert sorted(got) == sorted(names + EMAILS)
    prefixed = shells.complete(shell, "oppcli update 1001 --assignee Ca").ok()
    assert prefixed == names[2:3]


@pytest.mark.parametrize("shell", SHELLS)
def test_without_a_store_nothing_is_offered_and_nothing_printed(shells, shell, scratch):
    missing = scratch / "no-such-store"
    for line in ("oppcli show ", "oppcli search --assignee ", "oppcli search --custom-field Region="):
        result = shells.complete(shell, line, store=missing)
        assert result.ok() == [], line
    assert not missing.exists()
    # the same lines do offer values with the store: the empty answers above come from its absence
    assert shells.complete(shell, "oppcli show 100").ok()


# ---- completing never reaches the network -------------------------------------------------------
@pytest.fixture
def listener():
    """A TCP port that records connections (completion must never make one)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    yield sock
    sock.close()


def _connections(sock: socket.socket) -> int:
    count = 0
    sock.setblocking(False)
    while True:
        try:
            conn, _ = sock.accept()
        except BlockingIOError:
            return count
        conn.close()
        count += 1


@pytest.mark.parametrize("shell", SHELLS)
def test_completion_never_makes_a_network_request(shells, shell, listener):
    port = listener.getsockname()[1]
    copper = {"OPPCLI_BACKEND": "copper", "OPPCLI_COPPER_URL": f"http://127.0.0.1:{port}",
              "COPPER_API_KEY": "test-key", "COPPER_USER_EMAIL": "test@example.com"}
    # the listener accepts a connection but never answers: a request would hang until the timeout
    for line in ("oppcli search --assignee ", "oppcli show 100", "oppcli search --custom-field Region="):
        assert shells.complete(shell, line, env=copper, timeout=20).ok() == [], line
    assert _connections(listener) == 0
    # the unroutable address of the brief, too: completing returns, quietly, with nothing
    dead = {**copper, "OPPCLI_COPPER_URL": "http://127.0.0.1:9"}
    assert shells.complete(shell, "oppcli search --assignee ", env=dead, timeout=20).ok() == []


# ---- a 100,000-record store ----------------------------------------------------------------------
BIG_LINES = {"bash": "oppcli show 19999", "zsh": "oppcli update 19999",
             "fish": "oppcli delete 100001 19999"}


@pytest.mark.parametrize("shell", SHELLS)
def test_id_completion_on_a_100k_record_store(shells, shell, big_store):
    result = shells.complete(shell, BIG_LINES[shell], store=big_store, timeout=BIG_TIMEOUT)
    assert sorted(result.ok()) == [str(i) for i in range(199_990, 200_000)]


# ---- bash: the harness against real readline, and what TAB leaves on the line --------------------
BASH_RC = r"""
PS1='$ '; PS2=''; unset PROMPT_COMMAND
source "$BASH_COMPLETION_FILE"
source "$OPPCLI_COMPLETION_SCRIPT"
__spec=$(complete -p oppcli)
[[ $__spec =~ -F\ ([^ ]+) ]] && __func=${BASH_REMATCH[1]}
__record() {
  "$__func" "$@"; local rc=$? c
  { for c in "${COMP_WORDS[@]}"; do printf 'W\t%s\n' "$c"; done
    printf 'I\t%s\n' "$COMP_CWORD"
    for c in "${COMPREPLY[@]}"; do printf 'R\t%s\n' "$c"; done
    printf 'E\n'; } >> "$OPPCLI_TEST_DUMP"
  return $rc
}
eval "${__spec/-F $__func /-F __record }"
bind -x '"\C-t": printf "L\t%s\nE\n" "$READLINE_LINE" >> "$OPPCLI_TEST_DUMP"'
"""


class InteractiveBash:
    """`bash -i` in a pty: keys typed, records read from the dump file the rc writes."""

    def __init__(self, shells: Shells) -> None:
        import fcntl
        import pty
        import struct
        import termios

        rc = shells.scratch / "bashrc"
        rc.write_text(BASH_RC)
        self.dump = shells.scratch / f"bash-dump-{os.getpid()}-{time.monotonic_ns()}"
        self.dump.write_text("")
        env = shells.env()
        env.update(OPPCLI_COMPLETION_SCRIPT=str(SCRIPTS["bash"]), OPPCLI_TEST_DUMP=str(self.dump))
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 250, 0, 0))
        self.proc = subprocess.Popen(["bash", "--rcfile", str(rc), "--noprofile", "-i"],
                                     stdin=slave, stdout=slave, stderr=slave, env=env,
                                     cwd=shells.scratch / "cwd", start_new_session=True)
        os.close(slave)
        self.seen = 0
        self.records(keys=b"\x14")  # wait for readline: the bound key answers once the rc ran

    def records(self, keys: bytes) -> list[str]:
        """Type keys, wait for the next record (ended by an `E` line) and return its lines."""
        os.write(self.master, keys)
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.master], [], [], 0.02)
            if ready:
                try:
                    os.read(self.master, 65536)  # keep the pty drained
                except OSError:
                    break
            lines = self.dump.read_text().splitlines()
            ends = [i for i, ln in enumerate(lines) if ln == "E"]
            if len(ends) > self.seen:
                start = ends[self.seen - 1] + 1 if self.seen else 0
                self.seen += 1
                return lines[start:ends[self.seen - 1]]
        raise AssertionError(f"interactive bash gave no answer to {keys!r}")

    def complete(self, line: str) -> tuple[list[str], int, list[str]]:
        rec = self.records(line.encode() + b"\t")
        assert self.records(b"\x15\x14") == ["L\t"]  # Ctrl-U cleared the line
        return ([r[2:] for r in rec if r.startswith("W\t")],
                int(next(r[2:] for r in rec if r.startswith("I\t"))),
                [r[2:] for r in rec if r.startswith("R\t")])

    def line_after_tab(self, line: str) -> str:
        self.records(line.encode() + b"\t")
        [got] = self.records(b"\x14")
        return got.removeprefix("L\t")

    def close(self) -> None:
        try:
            os.write(self.master, b"\x15exit\n")
            self.proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)


@pytest.fixture
def interactive_bash(shells, bash_wordbreaks):
    bash = InteractiveBash(shells)
    yield bash
    bash.close()


@needs_bash
def test_bash_harness_matches_interactive_bash(shells, interactive_bash, bash_wordbreaks):
    lines = ["oppcli ", "oppcli search --assignee ", "oppcli update 1001 --assignee Ca",
             "oppcli list -o j", "oppcli list --fields id,mon", "oppcli search --stage Sales/N",
             "oppcli search --custom-field Region=", "oppcli search --custom-field Region=E"]
    for line in lines:
        words, cword, reply = interactive_bash.complete(line)
        assert words == bash_words(line, bash_wordbreaks), line
        assert cword == len(words) - 1, line
        assert reply == shells.complete("bash", line).ok(), line


@needs_bash
@pytest.mark.parametrize(("line", "after"), [
    ("oppcli search --stage Sales/N", "oppcli search --stage Sales/Negotiation "),
    ("oppcli show 100", "oppcli show 100"),  # nine candidates, no longer common prefix
    # Names with blanks are inserted quoted, as one argument.
    ("oppcli search --assignee Ad", "oppcli search --assignee Ada\\ Park "),
    # readline splits `Region=E` at `=`; the script rejoins it (bash-completion).
    ("oppcli search --custom-field Region=E", "oppcli search --custom-field Region=EMEA "),
])
def test_bash_inserts_on_the_line(interactive_bash, line, after):
    assert interactive_bash.line_after_tab(line) == after


# ---- zsh: the README's install, and what TAB leaves on the line -----------------------------------
@needs_zsh
def test_zsh_fpath_install_completes_on_the_first_tab(shells):
    """Installed as the README and --install-completion do (_oppcli on $fpath, then compinit):
    the first TAB of a session already completes (the script runs the completion when it is
    autoloaded, instead of only registering it)."""
    got = shells.complete("zsh", "oppcli search --status ", zsh_load="fpath").ok()
    assert sorted(got) == sorted(["Open", "Won", "Lost", "Abandoned"])


ZSH_BUFFER_INIT = r"""
PROMPT= RPROMPT= PS2=
autoload -Uz compinit && compinit -u -d "$ZDOTDIR/.zcompdump-source"
source "$OPPCLI_COMPLETION_SCRIPT"
bindkey '^M' undefined
bindkey '^J' undefined
bindkey '^I' complete-word
_test_show_buffer() { print -r -- $'\x01'"$BUFFER"$'\x01'; exit }
zle -N _test_show_buffer
bindkey '^T' _test_show_buffer
"""

ZSH_BUFFER_DRIVER = r"""
zmodload zsh/zpty || exit 90
zpty z zsh -f -i || exit 91
zpty -w z "source ${(q)1}"
zpty -n -w z "$2"$'\t\x14'
local line
while zpty -r z line; do
  if [[ $line == *$'\x01'*$'\x01'* ]]; then
    line=${line#*$'\x01'}; print -r -- "${line%%$'\x01'*}"; exit 0
  fi
done
exit 92
"""


@needs_zsh
@pytest.mark.parametrize(("line", "after"), [
    ("oppcli search --assignee Ad", "oppcli search --assignee Ada\\ Park "),
    ("oppcli search --custom-field Region=E", "oppcli search --custom-field Region=EMEA "),
    ("oppcli list -o j", "oppcli list -o json"),
])
def test_zsh_inserts_on_the_line(shells, scratch, line, after):
    """Nothing wrapped: the line zle holds after the TAB, read by a widget bound to Ctrl-T."""
    (scratch / "zsh-buffer-init.zsh").write_text(ZSH_BUFFER_INIT)
    (scratch / "zsh-buffer-driver.zsh").write_text(ZSH_BUFFER_DRIVER)
    env = shells.env()
    env["OPPCLI_COMPLETION_SCRIPT"] = str(SCRIPTS["zsh"])
    proc = subprocess.run(["zsh", "-f", str(scratch / "zsh-buffer-driver.zsh"),
                           str(scratch / "zsh-buffer-init.zsh"), line], env=env, cwd=scratch / "cwd",
                          capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    assert proc.stdout.rstrip("\r\n") == after
