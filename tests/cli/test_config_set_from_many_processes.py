"""`config set` from many processes at once: every key lands, none is lost.

Each `config set` reads the file, changes one key and replaces the file; it holds a lock
throughout, so two at once never both read the old file (the second rename would drop the
first's key).
"""

from __future__ import annotations

import stat
import subprocess
import sys
import threading
import tomllib
from pathlib import Path

from conftest import oppcli_exe

# Each worker is a process running the real CLI in-process, `config set` after `config set`,
# all starting at the same moment (many sets overlap without paying an interpreter start each).
WORKER = r'''
import sys
from typer.main import get_command
from oppcli.cli.app import app

command = get_command(app)
k, count = int(sys.argv[1]), int(sys.argv[2])
print("ready", flush=True)
sys.stdin.readline()
for j in range(count):
    command.main(args=["--profile", f"w{k}", "config", "set", "copper.user_email",
                       f"w{k}-{j}@example.com"], prog_name="oppcli", standalone_mode=False)
    command.main(args=["--profile", f"w{k}j{j}", "config", "set", "copper.retries", str(j)],
                 prog_name="oppcli", standalone_mode=False)
'''


def profiles(config: Path) -> dict:
    return tomllib.loads(config.read_text())["profiles"]


def test_concurrent_config_set_processes_lose_no_key(isolated, tmp_path):
    workers, count = 6, 15
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    procs = [subprocess.Popen([sys.executable, str(script), str(k), str(count)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for k in range(workers)]
    try:
        for p in procs:
            assert p.stdout is not None and p.stdout.readline() == "ready\n"
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        for p in procs:
            _, err = p.communicate(timeout=120)
            assert p.returncode == 0, err
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    config = isolated / "config" / "config.toml"
    got = profiles(config)
    for k in range(workers):
        assert got[f"w{k}"]["copper"]["user_email"] == f"w{k}-{count - 1}@example.com"
        for j in range(count):
            assert got[f"w{k}j{j}"]["copper"]["retries"] == j, (k, j)
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert not [p.name for p in config.parent.iterdir() if p.name.endswith(".tmp")]


def test_concurrent_installed_config_set_commands_all_land(isolated):
    """The same with the console script: one `oppcli config set` process per key."""
    exe = oppcli_exe()
    keys = {"backend": "copper", "store": str(isolated / "s"), "date_order": "DMY",
            "copper.url": "https://example.com/api", "copper.user_email": "a@example.com",
            "copper.rate_limit": "90", "copper.rate_window": "30.0", "copper.timeout": "7.0",
            "copper.retries": "2", "copper.backoff": "0.5", "copper.cache_ttl": "60.0",
            "copper.concurrency": "3"}
    jobs = [(profile, key, value) for profile in ("one", "two") for key, value in keys.items()]
    failures: list[str] = []
    go = threading.Barrier(len(jobs))

    def one(profile: str, key: str, value: str) -> None:
        go.wait()
        proc = subprocess.run([exe, "--profile", profile, "config", "set", key, value],
                              capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)
        if proc.returncode != 0:
            failures.append(proc.stderr)

    threads = [threading.Thread(target=one, args=job) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    got = profiles(isolated / "config" / "config.toml")
    for profile, key, value in jobs:
        section, _, leaf = key.rpartition(".")
        table = got[profile][section] if section else got[profile]
        assert str(table[leaf]) == (value if key != "store" else str(Path(value).resolve())), \
            (profile, key)
