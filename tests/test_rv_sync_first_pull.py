"""sync.py:318-325: the first pull creates the store (create_store) and only afterwards marks it
as a mirror (merge_mirror writes meta["mirror"] last). A first pull that fails or is
interrupted in between (disk full, SIGTERM during a large merge) leaves a plain, *writable*
local store that every later `sync pull` refuses as "not a mirror"."""

from __future__ import annotations

from oppcli.backends.local import LocalStore
from oppcli.errors import StoreError


def test_a_failed_first_pull_can_be_retried(run, copper, tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    real = LocalStore.merge_mirror
    calls = {"n": 0}

    def flaky(self, *a, **kw):
        calls["n"] += 1
        if calls["n"] == 1:
            raise StoreError("cannot rewrite opportunities.jsonl: No space left on device")
        return real(self, *a, **kw)

    monkeypatch.setattr(LocalStore, "merge_mirror", flaky)
    run("--store", str(mirror), "sync", "pull", expect=3)
    # the disk has room again: the cron job's next run
    r = run("--store", str(mirror), "sync", "pull", expect=None)
    assert r.exit_code == 0, r.stderr


def test_a_half_made_mirror_is_not_writable(run, copper, tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    monkeypatch.setattr(LocalStore, "merge_mirror",
                        lambda self, *a, **kw: (_ for _ in ()).throw(StoreError("disk full")))
    run("--store", str(mirror), "sync", "pull", expect=3)
    r = run("--backend", "local", "--store", str(mirror), "create", "--name", "X",
            "--primary-contact-id", "601", expect=None)
    assert r.exit_code == 2, "a store made by sync pull accepted a local write"
