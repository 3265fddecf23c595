"""`oppcli auth check` against a copper.url whose path does not lead to the API: Copper answers
404 for /users/me, and the error says which URL was used and that it is the thing to check."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("path", ["/v1", "/developer_api", "/developer_api/v2", ""])
def test_a_wrong_url_path_names_the_configured_url(run, copper, monkeypatch, path):
    base = copper.url.rsplit("/developer_api/v1", 1)[0]
    monkeypatch.setenv("OPPCLI_COPPER_URL", base + path)
    r = run("auth", "check", expect=4)
    assert r.stdout == ""
    assert r.stderr == (f"oppcli: error: GET /users/me: not found; is copper.url right? it is "
                        f"{base + path} (Copper's is https://api.copper.com/developer_api/v1)\n")
    assert copper.calls("/users/me")[-1].status == 404


def test_the_hint_never_shows_a_password_in_the_url(run, copper, monkeypatch):
    base = copper.url.rsplit("/developer_api/v1", 1)[0]
    monkeypatch.setenv("OPPCLI_COPPER_URL", base.replace("http://", "http://me:s3cret@") + "/v1")
    r = run("auth", "check", "-o", "json", expect=4)
    assert "s3cret" not in r.stderr and f"it is {base}/v1 " in r.stderr


def test_the_right_url_still_answers_who_the_key_belongs_to(run, copper):
    assert run.json("auth", "check")["email"] == "ada.park@example.com"
