"""Shared fixtures: every test runs isolated from the user's machine (config, store, env).

Tests live in folders named after what they test (cli/, local/, copper/, transfer/, history/,
reliability/, completion/, domain/, api/), with no __init__.py: pytest imports each test file by
its basename, so basenames must be unique across folders. Loading this file puts tests/ on
sys.path (pytest's default "prepend" import mode), so the helpers beside it import as top-level
modules from any folder: conftest, fakecopper (the Copper test server), checks (store bytes,
one-line errors), ptyterm (a real terminal) and completer (bash completion answers).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from oppcli.cli.app import app

ENV_VARS = ("OPPCLI_BACKEND", "OPPCLI_PROFILE", "OPPCLI_DATE_ORDER", "OPPCLI_COPPER_URL",
            "COPPER_API_KEY", "COPPER_USER_EMAIL", "OPPCLI_COPPER_API_KEY",
            "OPPCLI_COPPER_USER_EMAIL", "OPPCLI_LOCK_TIMEOUT", "NO_COLOR", "FORCE_COLOR",
            "OPPCLI_COPPER_RATE_LIMIT", "OPPCLI_COPPER_RATE_WINDOW", "OPPCLI_COPPER_TIMEOUT",
            "OPPCLI_COPPER_RETRIES", "OPPCLI_COPPER_BACKOFF", "OPPCLI_COPPER_CACHE_TTL",
            "OPPCLI_COPPER_CONCURRENCY", "XDG_CACHE_HOME",
            # Tests speak only to 127.0.0.1: a proxy from the shell must not be asked.
            "http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY")


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private config dir, store path and data dir for each test."""
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("OPPCLI_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("OPPCLI_STORE", str(tmp_path / "store"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.setenv("OPPCLI_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("COLUMNS", "200")
    # Never the machine's own keyring (a real key, an unlock dialog): the keyring tests
    # (tests/auth/) choose theirs.
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
    return tmp_path


@pytest.fixture
def store_path(isolated: Path) -> Path:
    return isolated / "store"


@pytest.fixture(autouse=True, scope="session")
def _build_the_click_command_once():
    """Typer rebuilds the Click command on every CliRunner.invoke (most of its cost); the app
    does not change during a run, so build it once."""
    import typer.testing

    built = typer.main.get_command(app)
    original = typer.testing._get_command
    typer.testing._get_command = lambda _app: built
    yield
    typer.testing._get_command = original


class Run:
    """Invoke oppcli in-process through Typer's CliRunner; stdout and stderr kept apart."""

    def __init__(self) -> None:
        self.runner = CliRunner()

    def __call__(self, *args: str, input: str | bytes | None = None, expect: int | None = 0):
        result = self.runner.invoke(app, list(args), input=input)
        if expect is not None:
            assert result.exit_code == expect, (
                f"oppcli {' '.join(args)} exited {result.exit_code}, expected {expect}\n"
                f"stdout: {result.stdout}\nstderr: {result.stderr}\n{result.exception!r}")
        return result

    def json(self, *args: str, input: str | bytes | None = None):
        result = self(*args, "-o", "json", input=input)
        return orjson.loads(result.stdout)


@pytest.fixture
def run() -> Run:
    return Run()


@pytest.fixture
def sample(run: Run, store_path: Path) -> Path:
    """A store filled by `oppcli init --sample`."""
    run("init", "--sample")
    return store_path


def oppcli_exe() -> str:
    """The installed console script (next to this interpreter, else on PATH)."""
    here = Path(sys.executable).parent / "oppcli"
    if here.exists():
        return str(here)
    found = shutil.which("oppcli")
    if not found:
        pytest.fail("the oppcli console script is not installed: run pip install -e '.[test]'")
    return found


@pytest.fixture
def sh(isolated: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the installed `oppcli` as a subprocess: no terminal, stdin closed."""
    exe = oppcli_exe()

    def call(*args: str, input: str | None = None, expect: int | None = 0,
             env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        full_env = dict(os.environ)
        full_env.update(env or {})
        proc = subprocess.run([exe, *args], input=input if input is not None else None,
                              stdin=None if input is not None else subprocess.DEVNULL,
                              capture_output=True, text=True, env=full_env, timeout=timeout)
        if expect is not None:
            assert proc.returncode == expect, (
                f"oppcli {' '.join(args)} exited {proc.returncode}, expected {expect}\n"
                f"stdout: {proc.stdout}\nstderr: {proc.stderr}")
        return proc
    return call


def jq_available() -> bool:
    return shutil.which("jq") is not None


def pipe_to_jq(producer: Sequence[str], jq_filter: str, env: dict[str, str] | None = None) -> str:
    """`oppcli ARGS | jq FILTER` through a real pipe; returns jq's stdout."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    first = subprocess.Popen([oppcli_exe(), *producer], stdout=subprocess.PIPE,
                             stdin=subprocess.DEVNULL, env=full_env)
    jq = subprocess.run(["jq", "-c", jq_filter], stdin=first.stdout, capture_output=True,
                        text=True, timeout=60)
    assert first.stdout is not None
    first.stdout.close()
    assert first.wait(timeout=60) == 0
    assert jq.returncode == 0, jq.stderr
    return jq.stdout


@pytest.fixture(scope="session")
def shared_sample_store(tmp_path_factory: pytest.TempPathFactory):
    """One store holding what `oppcli init --sample` writes, shared by tests that only read.

    Checked byte for byte at the end of the session: reading must never change a store.
    """
    from oppcli.backends.local import LocalStore
    from oppcli.domain.sample import SAMPLE_LOOKUPS, sample_records

    path = tmp_path_factory.mktemp("shared-sample") / "store"
    LocalStore.create_store(path, lookups=SAMPLE_LOOKUPS, records=sample_records())

    def files() -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in sorted(path.iterdir()) if p.is_file()}

    before = files()
    yield path
    assert files() == before, "a read-only command changed the shared sample store"


@pytest.fixture
def ro_sample(shared_sample_store: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The shared sample store as OPPCLI_STORE, for read-only tests (saves an `init` per test)."""
    monkeypatch.setenv("OPPCLI_STORE", str(shared_sample_store))
    return shared_sample_store


def derived_records(count: int, first_id: int = 1) -> list[dict]:
    """`count` records derived from the sample ones: ids from first_id, names and details made
    unique. For stores larger than the sample."""
    import copy

    from oppcli.domain.sample import sample_records

    base = sample_records()
    records = []
    for i in range(count):
        rec = copy.deepcopy(base[i % len(base)])
        rec["id"] = first_id + i
        rec["name"] = f"{rec['name']} #{first_id + i}"
        rec["details"] = f"original {first_id + i}"
        records.append(rec)
    return records


def build_store(path: Path, records: list[dict]) -> dict[int, dict]:
    """A store at path holding these records and the sample lookups; returns them by id."""
    from oppcli.backends.local import LocalStore
    from oppcli.domain.sample import SAMPLE_LOOKUPS

    LocalStore.create_store(path, lookups=SAMPLE_LOOKUPS, records=records)
    return {r["id"]: r for r in records}



# ---- Copper: a Copper-speaking server on 127.0.0.1 (tests/fakecopper.py) ----------------------
API_KEY = "k-test-1234567890-secret"
USER_EMAIL = "ada.park@example.com"


def copper_env(url: str, **extra: str) -> dict[str, str]:
    """The environment that points oppcli at a test server: fast retries, no pacing delays."""
    env = {"OPPCLI_BACKEND": "copper", "OPPCLI_COPPER_URL": url, "COPPER_API_KEY": API_KEY,
           "COPPER_USER_EMAIL": USER_EMAIL, "OPPCLI_COPPER_RATE_LIMIT": "100000",
           "OPPCLI_COPPER_BACKOFF": "0.01", "OPPCLI_COPPER_TIMEOUT": "5"}
    env.update(extra)
    return env


@pytest.fixture
def copper(monkeypatch: pytest.MonkeyPatch):
    """A test Copper server holding the sample data, with the environment pointing at it."""
    from fakecopper import FakeCopper
    from oppcli.domain.sample import SAMPLE_LOOKUPS, sample_records

    server = FakeCopper(lookups=SAMPLE_LOOKUPS, records=sample_records(), api_key=API_KEY,
                        user_email=USER_EMAIL)
    with server:
        for key, value in copper_env(server.url).items():
            monkeypatch.setenv(key, value)
        yield server
