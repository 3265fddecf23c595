"""The shared rate-limit allowance belongs to the Copper account (the key's owner and the key),
not to the spelling of copper.url: Copper counts requests per key, so 127.0.0.1 and localhost,
or a trailing slash, must not each get an allowance of their own."""

from __future__ import annotations

import pytest

from conftest import API_KEY, USER_EMAIL


def spellings(url: str) -> list[str]:
    """The same server, written three ways."""
    return [url, url.replace("127.0.0.1", "localhost"), url + "/"]


def test_commands_through_different_spellings_share_one_allowance(run, copper, monkeypatch, isolated):
    copper.set_rate_limit(5, 1.0)
    monkeypatch.setenv("OPPCLI_COPPER_RATE_LIMIT", "5")
    # Longer than the server's window, as in test_copper_backend's sharing tests: on a loaded machine
    # the server can see a request late.
    monkeypatch.setenv("OPPCLI_COPPER_RATE_WINDOW", "1.3")
    urls = spellings(copper.url)
    for n in range(18):  # a shell loop, alternating between scripts that spell the URL apart
        monkeypatch.setenv("OPPCLI_COPPER_URL", urls[n % len(urls)])
        run("show", "1001", "-o", "json")
    assert [c.status for c in copper.requests] == [200] * 18
    assert len(list((isolated / "cache").glob("copper-pacing-*"))) == 1


def test_the_allowance_file_is_named_by_the_account_never_the_key(tmp_path):
    from oppcli.backends.copper import pacing_path

    one = pacing_path(tmp_path, API_KEY, USER_EMAIL)
    assert one == pacing_path(tmp_path, API_KEY, " " + USER_EMAIL.upper())
    assert one != pacing_path(tmp_path, API_KEY + "x", USER_EMAIL)  # another key
    assert one != pacing_path(tmp_path, API_KEY, "ben.okafor@example.com")  # another owner
    assert one.parent == tmp_path and one.name.startswith("copper-pacing-")
    assert API_KEY not in one.name and USER_EMAIL not in one.name


@pytest.mark.parametrize("second", [1, 2])
def test_the_backends_of_two_spellings_use_one_file(copper, monkeypatch, second):
    from oppcli.backends.copper import CopperBackend
    from oppcli.config import load_settings

    urls = spellings(copper.url)
    paths = []
    for url in (urls[0], urls[second]):
        monkeypatch.setenv("OPPCLI_COPPER_URL", url)
        backend = CopperBackend.from_settings(load_settings())
        paths.append(backend.client.pacer.path)  # type: ignore[attr-defined]
    assert paths[0] == paths[1]
