"""The installed `oppcli` on a real terminal (a pty), for tests of what a person at a terminal sees.

    code, out = on_a_terminal(["list"], columns=120)       # stdout and stderr on a pty
    code, out = answer_a_prompt(["delete", "1001"], "n")   # stdin too; answer its [y/N] prompt

Standard library only; Linux (the prompt helper reads /proc to see the process waiting).
"""

from __future__ import annotations

import fcntl
import os
import select
import shlex
import signal
import struct
import subprocess
import termios
import time

from conftest import oppcli_exe


def on_a_terminal(argv: list[str], columns: int = 80) -> tuple[int, str]:
    """Run the installed oppcli with stdout and stderr on a pty `columns` wide; all it wrote."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    proc = subprocess.Popen([oppcli_exe(), *argv], stdin=subprocess.DEVNULL, stdout=slave,
                            stderr=slave, env=terminal_env())
    os.close(slave)
    code, out = run_to_the_end(master, proc)
    return code, out.decode("utf-8", errors="replace")


def terminal_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This environment as a terminal's: a known TERM, no COLUMNS or LINES to override the
    pty's size."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env.update(extra or {})
    env["TERM"] = "xterm-256color"
    return env


def run_to_the_end(master: int, proc: subprocess.Popen[bytes], seconds: float = 60) -> tuple[int, bytes]:
    """Everything the process writes to its pty (`master`) until it ends, and its exit code;
    closes `master`, and kills the process if it outlives `seconds`."""
    out = b""
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
        code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return code, out


def read_until(fd: int, needle: bytes, deadline: float) -> bytes:
    """What the terminal shows up to and including `needle`; fails if it never comes."""
    buf = b""
    while needle not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no {needle!r} on the terminal in time; got {buf!r}")
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: every end of the terminal's slave side is closed
            chunk = b""
        if not chunk:
            raise AssertionError(f"the terminal closed before {needle!r}; got {buf!r}")
        buf += chunk
    return buf


def drain(fd: int, deadline: float) -> bytes:
    """Everything else the terminal shows until it closes or the deadline."""
    buf = b""
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            break
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        buf += chunk
    return buf


def wait_until_reading(pid: int, deadline: float) -> None:
    """Until the process sleeps (in its read of the answer). A SIGINT that lands after the
    prompt is written but before read() starts only sets Python's flag, and the read then waits
    for a line; a person pressing Ctrl-C a moment later is never that fast."""
    while True:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
        if state == b"S":
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"oppcli never waited for the answer (state {state!r})")
        time.sleep(0.002)


def take_terminal() -> None:
    """In the child, after setsid: the pty becomes its controlling terminal."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    # As a shell gives a command it runs in the foreground. A test run started in the background
    # (`pytest &`, nohup) passes SIGINT on as ignored, and oppcli rightly keeps it ignored then.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def answer_a_prompt(argv: list[str], answer: str) -> tuple[int, str]:
    """The installed `oppcli ARGV` with stdin, stdout and stderr on a pty (its controlling
    terminal); answer its `[y/N]:` prompt with "y", "n", "sigint" (SIGINT sent to the process)
    or "ctrl-c" (\\x03 typed on the terminal). Returns the exit code and all it wrote."""
    return _answer([oppcli_exe(), *argv], answer, dict(os.environ), in_shell=False)


def answer_a_prompt_in_shell(script: str, answer: str) -> tuple[int, str]:
    """`bash -c SCRIPT` (OPPCLI in it: the installed oppcli) with the pty as its controlling
    terminal, so a pipeline's oppcli asks there while its stdin is the pipe; answer as
    answer_a_prompt does ("y" or "n")."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env.update(TERM="xterm-256color", NO_COLOR="1")
    command = ["bash", "-c", script.replace("OPPCLI", shlex.quote(oppcli_exe()))]
    return _answer(command, answer, env, in_shell=True)


def _answer(command: list[str], answer: str, env: dict[str, str], *,
            in_shell: bool) -> tuple[int, str]:
    master, slave = os.openpty()
    proc = subprocess.Popen(command, stdin=slave, stdout=slave, stderr=slave, env=env,
                            start_new_session=True, preexec_fn=take_terminal)
    os.close(slave)
    deadline = time.monotonic() + 30
    try:
        out = read_until(master, b"[y/N]:", deadline)
        if in_shell:  # the reader is a child of the shell: give it a moment to read
            time.sleep(0.2)
        else:
            wait_until_reading(proc.pid, deadline)
        if answer == "sigint":
            proc.send_signal(signal.SIGINT)
        elif answer == "ctrl-c":
            os.write(master, b"\x03")
        else:
            os.write(master, answer.encode() + b"\n")
        out += drain(master, deadline)
        code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return code, out.decode(errors="replace")
