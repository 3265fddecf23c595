"""Configuration: the TOML file (a store path saved absolute), profiles, precedence, bad keys and
values, and what settings change (the date order, down to the close dates `init --sample` writes).

Each test has its own OPPCLI_CONFIG_DIR (the autouse `isolated` fixture), so the file starts
absent; tests that check precedence remove OPPCLI_STORE themselves.
"""

from __future__ import annotations

import datetime as dt
import os
import stat
import tomllib
from pathlib import Path
from typing import Any

import orjson
import pytest

from checks import json_ids, one_error_line
from oppcli.backends.local import DATA, META
from oppcli.config import KEYS
from oppcli.domain.sample import sample_records

KEY = "sk-live-0123456789abcdefXYZ"


@pytest.fixture
def config_file(isolated: Path) -> Path:
    return isolated / "config" / "config.toml"


def show(run: Any, *before: str) -> dict[str, Any]:
    result = run(*before, "config", "show", "-o", "json")
    assert result.stderr == ""
    return orjson.loads(result.stdout)


def get(run: Any, key: str, *before: str) -> str:
    result = run(*before, "config", "get", key)
    assert result.stdout.endswith("\n") and result.stdout.count("\n") == 1
    return result.stdout[:-1]


def toml(path: Path) -> dict[str, Any]:
    return tomllib.loads(path.read_text())


def one_line_error(result: Any) -> str:
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# ---- the file -----------------------------------------------------------------------------------
def test_config_path_follows_oppcli_config_dir(run, config_file):
    result = run("config", "path")
    assert result.stdout == f"{config_file}\n"
    assert not config_file.exists()  # asking for the path creates nothing


def test_config_set_creates_a_private_file_in_a_private_dir(run, config_file):
    assert not config_file.parent.exists()
    result = run("config", "set", "store", "/srv/deals")
    assert result.stdout == "" and "store" in result.stderr
    assert mode(config_file.parent) == 0o700
    assert mode(config_file) == 0o600
    assert toml(config_file) == {"profiles": {"default": {"store": "/srv/deals"}}}


def test_rewriting_the_config_keeps_it_private(run, config_file):
    run("config", "set", "store", "/srv/deals")
    os.chmod(config_file, 0o644)
    run("config", "set", "copper.api_key", KEY)
    assert mode(config_file) == 0o600
    assert toml(config_file)["profiles"]["default"] == {"store": "/srv/deals",
                                                        "copper": {"api_key": KEY}}


def test_set_get_unset_round_trip(run, config_file):
    assert get(run, "date_order") == "MDY"
    run("config", "set", "date_order", "dmy")
    assert get(run, "date_order") == "DMY"  # normalised
    assert toml(config_file)["profiles"]["default"]["date_order"] == "DMY"
    run("config", "unset", "date_order")
    assert get(run, "date_order") == "MDY"
    assert "date_order" not in toml(config_file)["profiles"]["default"]


def test_get_of_an_unset_key_prints_an_empty_line(run):
    assert get(run, "copper.user_email") == ""


def test_unset_of_a_nested_key_drops_its_empty_table(run, config_file):
    run("config", "set", "copper.user_email", "me@example.com")
    assert toml(config_file)["profiles"]["default"]["copper"] == {"user_email": "me@example.com"}
    run("config", "unset", "copper.user_email")
    assert toml(config_file)["profiles"]["default"] == {}


def test_config_show_lists_every_key_with_value_and_source(run, config_file, monkeypatch):
    monkeypatch.delenv("OPPCLI_STORE")
    doc = show(run)
    assert doc["profile"] == "default" and doc["config_file"] == str(config_file)
    assert list(doc["settings"]) == list(KEYS) and list(doc["sources"]) == list(KEYS)
    assert set(doc["sources"].values()) == {"default"}
    assert doc["settings"]["backend"] == "local" and doc["settings"]["date_order"] == "MDY"
    assert doc["settings"]["copper.api_key"] is None


def test_config_show_table_goes_to_stdout(run):
    result = run("config", "show", "-o", "table")
    for key in KEYS:
        assert key in result.stdout
    assert result.stderr == ""


def test_config_set_store_saves_an_absolute_path(run, isolated, monkeypatch):
    here = isolated / "cwd"
    here.mkdir()
    monkeypatch.chdir(here)
    run("config", "set", "store", "rel/path")
    saved = tomllib.loads((isolated / "config" / "config.toml").read_text())
    stored = saved["profiles"]["default"]["store"]
    assert Path(stored).is_absolute(), stored
    assert Path(stored) == (here / "rel" / "path").resolve()


# ---- the API key is masked --------------------------------------------------------------------------
def test_config_show_masks_the_api_key_from_the_profile(run):
    run("config", "set", "copper.api_key", KEY)
    doc = show(run)
    shown = doc["settings"]["copper.api_key"]
    assert shown and shown != KEY and "0123456789abcdef" not in shown
    assert KEY not in run("config", "show", "-o", "table").stdout
    assert KEY not in run("config", "show", "-o", "json").stdout


def test_config_show_masks_the_api_key_from_the_environment(run, monkeypatch):
    monkeypatch.setenv("COPPER_API_KEY", KEY)
    doc = show(run)
    assert KEY not in orjson.dumps(doc).decode()
    assert doc["sources"]["copper.api_key"] == "environment COPPER_API_KEY"


def test_config_show_masks_a_short_key_entirely(run):
    run("config", "set", "copper.api_key", "abc123")
    assert "abc" not in show(run)["settings"]["copper.api_key"]


def test_config_get_masks_unless_reveal(run):
    run("config", "set", "copper.api_key", KEY)
    assert get(run, "copper.api_key") != KEY
    assert run("config", "get", "copper.api_key", "--reveal").stdout == KEY + "\n"


# ---- precedence: flag > environment > profile > default -----------------------------------------------
def test_store_precedence_with_reported_sources(run, isolated, config_file, monkeypatch):
    monkeypatch.delenv("OPPCLI_STORE")
    doc = show(run)
    assert doc["settings"]["store"] == str(isolated / "xdg-data" / "oppcli" / "store")
    assert doc["sources"]["store"] == "default"

    run("config", "set", "store", str(isolated / "from-profile"))
    doc = show(run)
    assert doc["settings"]["store"] == str(isolated / "from-profile")
    assert doc["sources"]["store"] == f"profile 'default' in {config_file}"

    monkeypatch.setenv("OPPCLI_STORE", str(isolated / "from-env"))
    doc = show(run)
    assert doc["settings"]["store"] == str(isolated / "from-env")
    assert doc["sources"]["store"] == "environment OPPCLI_STORE"

    doc = show(run, "--store", str(isolated / "from-flag"))
    assert doc["settings"]["store"] == str(isolated / "from-flag")
    assert doc["sources"]["store"] == "flag --store"


def test_store_precedence_decides_which_store_is_read(run, isolated, monkeypatch):
    flag_store, env_store, profile_store = (isolated / n for n in ("flag", "env", "profile"))
    run("--store", str(flag_store), "init", "--sample")
    run("--store", str(env_store), "init")
    run("--store", str(profile_store), "init")
    run("--store", str(profile_store), "create", "--name", "Only in profile store",
        "--primary-contact-id", "1")
    monkeypatch.delenv("OPPCLI_STORE")
    run("config", "set", "store", str(profile_store))
    assert [r["name"] for r in run.json("list")] == ["Only in profile store"]
    monkeypatch.setenv("OPPCLI_STORE", str(env_store))
    assert run.json("list") == []
    assert len(run.json("--store", str(flag_store), "list")) == 36


def test_backend_precedence(run, sample, monkeypatch):
    run("config", "set", "backend", "copper")
    assert show(run)["sources"]["backend"].startswith("profile 'default'")
    run("list", expect=3)
    monkeypatch.setenv("OPPCLI_BACKEND", "local")
    assert show(run)["sources"]["backend"] == "environment OPPCLI_BACKEND"
    assert len(run.json("list")) == 36
    monkeypatch.setenv("OPPCLI_BACKEND", "copper")
    run("list", expect=3)
    doc = show(run, "--backend", "local")
    assert doc["settings"]["backend"] == "local" and doc["sources"]["backend"] == "flag --backend"
    assert len(run.json("--backend", "local", "list")) == 36


def test_date_order_precedence(run, monkeypatch):
    run("config", "set", "date_order", "DMY")
    assert get(run, "date_order") == "DMY"
    monkeypatch.setenv("OPPCLI_DATE_ORDER", "mdy")
    doc = show(run)
    assert doc["settings"]["date_order"] == "MDY"
    assert doc["sources"]["date_order"] == "environment OPPCLI_DATE_ORDER"


def test_api_key_precedence(run, monkeypatch):
    run("config", "set", "copper.api_key", "from-the-profile-1234")
    assert get(run, "copper.api_key") != ""
    assert run("config", "get", "copper.api_key", "--reveal").stdout == "from-the-profile-1234\n"
    monkeypatch.setenv("OPPCLI_COPPER_API_KEY", "from-oppcli-env-5678")
    assert run("config", "get", "copper.api_key", "--reveal").stdout == "from-oppcli-env-5678\n"
    monkeypatch.setenv("COPPER_API_KEY", "from-copper-env-9012")
    assert run("config", "get", "copper.api_key", "--reveal").stdout == "from-copper-env-9012\n"


# ---- profiles -------------------------------------------------------------------------------------------
def test_profile_flag_sets_and_reads_a_named_profile(run, config_file, monkeypatch):
    monkeypatch.delenv("OPPCLI_STORE")
    run("--profile", "work", "config", "set", "store", "/srv/work")
    assert toml(config_file) == {"profiles": {"work": {"store": "/srv/work"}}}
    assert get(run, "store", "--profile", "work") == "/srv/work"
    assert get(run, "store") != "/srv/work"  # the default profile is untouched
    doc = show(run, "--profile", "work")
    assert doc["profile"] == "work"
    assert doc["sources"]["store"] == f"profile 'work' in {config_file}"


def test_oppcli_profile_environment_selects_the_profile(run, config_file, monkeypatch):
    monkeypatch.delenv("OPPCLI_STORE")
    run("--profile", "work", "config", "set", "store", "/srv/work")
    run("--profile", "home", "config", "set", "store", "/srv/home")
    monkeypatch.setenv("OPPCLI_PROFILE", "work")
    assert get(run, "store") == "/srv/work"
    assert show(run)["profile"] == "work"
    assert get(run, "store", "--profile", "home") == "/srv/home"  # the flag beats the environment
    run("config", "set", "date_order", "DMY")  # writes to the selected profile
    assert toml(config_file)["profiles"]["work"]["date_order"] == "DMY"
    assert "date_order" not in toml(config_file)["profiles"]["home"]


def test_profile_selects_the_store_commands_use(run, isolated, monkeypatch):
    monkeypatch.delenv("OPPCLI_STORE")
    work = isolated / "work-store"
    run("--profile", "work", "config", "set", "store", str(work))
    run("--profile", "work", "init", "--sample")
    assert (work / "opportunities.jsonl").exists()
    assert len(run.json("--profile", "work", "list")) == 36
    run("list", expect=3)  # the default profile's store was never created


@pytest.mark.parametrize("how", ["flag", "environment"])
@pytest.mark.parametrize("command", [["list"], ["config", "show"], ["config", "get", "store"]])
def test_unknown_profile_exits_3(run, monkeypatch, how, command):
    run("--profile", "work", "config", "set", "backend", "local")
    if how == "flag":
        result = run("--profile", "nope", *command, expect=3)
    else:
        monkeypatch.setenv("OPPCLI_PROFILE", "nope")
        result = run(*command, expect=3)
    line = one_line_error(result)
    assert "'nope'" in line and "work" in line
    assert ("--profile" if how == "flag" else "OPPCLI_PROFILE") in line


# ---- bad keys and values ----------------------------------------------------------------------------
@pytest.mark.parametrize("command", [["get", "colour"], ["set", "colour", "red"], ["unset", "colour"],
                                     ["set", "copper", "x"], ["get", "copper.date"]])
def test_unknown_key_exits_2_listing_the_keys(run, config_file, command):
    line = one_line_error(run("config", *command, expect=2))
    assert repr(command[1]) in line
    for key in KEYS:
        assert key in line
    assert not config_file.exists()


@pytest.mark.parametrize("key,value,needle", [
    ("backend", "mongodb", "local, copper"),
    ("date_order", "YMD", "DMY"),
    ("copper.date_order", "ISO", "MDY"),
    ("copper.url", "ftp://copper.example", "https://"),
])
def test_invalid_value_exits_2_and_changes_nothing(run, config_file, key, value, needle):
    run("config", "set", "store", "/srv/deals")
    before = config_file.read_bytes()
    line = one_line_error(run("config", "set", key, value, expect=2))
    assert value in line and needle in line
    assert config_file.read_bytes() == before


BROKEN = [
    ("not TOML", "this is = = not toml\n"),
    ("unclosed table", "[profiles.default\nstore = 1\n"),
    ("profiles not tables", "[profiles]\ndefault = 3\n"),
    ("not UTF-8", b"\xff\xfe[profiles]\n"),
]


@pytest.mark.parametrize("content", [c for _, c in BROKEN], ids=[n for n, _ in BROKEN])
@pytest.mark.parametrize("command", [["list"], ["config", "show"], ["config", "get", "store"],
                                     ["config", "set", "store", "/x"], ["init"]])
def test_broken_config_exits_3_with_one_line_and_is_left_alone(run, config_file, content, command):
    config_file.parent.mkdir(mode=0o700)
    if isinstance(content, str):
        config_file.write_text(content)
    else:
        config_file.write_bytes(content)
    before = config_file.read_bytes()
    line = one_line_error(run(*command, expect=3))
    assert str(config_file) in line
    assert config_file.read_bytes() == before


def test_invalid_value_in_the_file_exits_3_naming_its_source(run, config_file):
    config_file.parent.mkdir(mode=0o700)
    config_file.write_text('[profiles.default]\nbackend = "mongodb"\n')
    line = one_line_error(run("list", expect=3))
    assert "mongodb" in line and "profile 'default'" in line


def test_invalid_value_in_the_environment_exits_3_naming_it(run, monkeypatch):
    monkeypatch.setenv("OPPCLI_DATE_ORDER", "YMD")
    line = one_line_error(run("list", expect=3))
    assert "YMD" in line and "OPPCLI_DATE_ORDER" in line


def test_invalid_backend_flag_is_a_usage_error(run, sample):
    line = one_line_error(run("--backend", "mongodb", "list", expect=2))
    assert "mongodb" in line and "local, copper" in line


def test_config_set_under_a_key_that_is_not_a_table_is_a_one_line_error(run, isolated):
    path = isolated / "config" / "config.toml"
    path.parent.mkdir(mode=0o700)
    path.write_text('[profiles.default]\ncopper = "x"\n')
    message = one_error_line(run("config", "set", "copper.url", "https://x.example",
                                 expect=None), 3)
    assert "not a table" in message, message
    assert path.read_text() == '[profiles.default]\ncopper = "x"\n'


# ---- date order ---------------------------------------------------------------------------------------
def _close(run: Any, *args: str) -> tuple[str, str]:
    """Create a deal with the args; (its stored close_date, the ISO day the table shows)."""
    rec = orjson.loads(run("create", "--name", "Dated", "--primary-contact", "601", *args,
                           "-o", "json").stdout)
    table = run("show", str(rec["id"]), "-o", "table", "--fields", "close_date").stdout
    return rec["close_date"], table.split()[-1]


def _found_on(run: Any, day: str) -> list[str]:
    hits = run.json("search", "--name", "Dated", "--close-after", day, "--close-before", day)
    return [h["name"] for h in hits]


def test_default_order_reads_03_04_as_march_4(run, sample):
    assert _close(run, "--close-date", "03/04/2026") == ("3/4/2026", "2026-03-04")
    assert _found_on(run, "2026-03-04") == ["Dated"]
    assert _found_on(run, "2026-04-03") == []


def test_dmy_store_reads_03_04_as_april_3(run, store_path):
    run("config", "set", "date_order", "DMY")
    run("init", "--sample")
    assert orjson.loads((store_path / "meta.json").read_bytes())["date_order"] == "DMY"
    assert _close(run, "--close-date", "03/04/2026") == ("3/4/2026", "2026-04-03")
    assert _found_on(run, "2026-04-03") == ["Dated"]
    assert _found_on(run, "2026-03-04") == []


def test_dmy_setting_on_an_mdy_store_reads_april_3_and_stores_it_in_the_stores_order(run, sample):
    run("config", "set", "date_order", "DMY")
    assert _close(run, "--close-date", "03/04/2026") == ("4/3/2026", "2026-04-03")
    assert _found_on(run, "2026-04-03") == ["Dated"]


def test_dmy_setting_applies_to_update_and_search_dates(run, sample):
    run("config", "set", "date_order", "DMY")
    rec = orjson.loads(run("update", "1001", "--close-date", "31/12/2026", "-o", "json").stdout)
    assert rec["close_date"] == "12/31/2026"  # the MDY store's order
    run("update", "1001", "--close-date", "12/31/2026", expect=2)  # month 31 in DMY
    hits = run.json("search", "--close-after", "31/12/2026", "--close-before", "31/12/2026")
    assert [h["id"] for h in hits] == [1001]


def test_json_from_show_is_read_in_the_stores_order_whatever_the_setting(run, sample):
    """`show -o json | create --from-json -` clones a deal under a DMY setting on an MDY store."""
    run("config", "set", "date_order", "DMY")
    shown = run("show", "1035", "-o", "json").stdout
    assert orjson.loads(shown)["close_date"] == "3/15/2026"  # month 15 if read as DMY
    clone = orjson.loads(run("create", "--from-json", "-", "-o", "json", input=shown).stdout)
    assert clone["close_date"] == "3/15/2026"


def test_oppcli_date_order_environment(run, sample, monkeypatch):
    monkeypatch.setenv("OPPCLI_DATE_ORDER", "DMY")
    assert _close(run, "--close-date", "03/04/2026")[1] == "2026-04-03"


def test_copper_date_order_alias(run, config_file, sample):
    run("config", "set", "copper.date_order", "DMY")
    assert toml(config_file)["profiles"]["default"]["date_order"] == "DMY"
    assert get(run, "date_order") == "DMY"
    assert get(run, "copper.date_order") == "DMY"
    assert _close(run, "--close-date", "03/04/2026")[1] == "2026-04-03"
    run("config", "unset", "copper.date_order")
    assert get(run, "date_order") == "MDY"


def test_copper_date_order_written_by_hand_under_copper_is_honoured(run, config_file, sample):
    config_file.parent.mkdir(mode=0o700)
    config_file.write_text('[profiles.default.copper]\ndate_order = "DMY"\n')
    assert get(run, "date_order") == "DMY"
    assert show(run)["sources"]["date_order"].startswith("profile 'default'")
    assert _close(run, "--close-date", "03/04/2026")[1] == "2026-04-03"


def test_iso_dates_do_not_depend_on_the_order(run, sample):
    run("config", "set", "date_order", "DMY")
    assert _close(run, "--close-date", "2026-03-04")[1] == "2026-03-04"


def test_dmy_sample_store_writes_dmy_close_dates_and_filters_them_right(run, store_path,
                                                                       monkeypatch):
    monkeypatch.setenv("OPPCLI_DATE_ORDER", "DMY")
    run("init", "--sample")
    assert orjson.loads((store_path / META).read_bytes())["date_order"] == "DMY"
    expected = {r["id"]: r for r in sample_records(date_order="DMY")}
    stored = [orjson.loads(x) for x in (store_path / DATA).read_bytes().splitlines()]
    assert {r["id"]: r["close_date"] for r in stored} == \
        {i: r["close_date"] for i, r in expected.items()}

    def day(text: str) -> dt.date:  # D/M/YYYY, read here without oppcli's parser
        d, m, y = map(int, text.split("/"))
        return dt.date(y, m, d)

    assert any(day(r["close_date"]) != dt.date(2026, 1, 1) and
               day(r["close_date"]).day != day(r["close_date"]).month for r in expected.values())
    wanted = sorted(i for i, r in expected.items() if day(r["close_date"]) >= dt.date(2026, 11, 1))
    assert 0 < len(wanted) < len(expected)
    result = run("search", "--close-after", "2026-11-01", "--sort", "id", "-o", "json")
    assert json_ids(result) == wanted


# ---- the Copper backend without credentials ------------------------------------------------------
@pytest.mark.parametrize("command", [["list"], ["search", "--status", "Open"], ["show", "1001"],
                                     ["create", "--name", "X", "--primary-contact", "601"],
                                     ["update", "1001", "--status", "Won"],
                                     ["delete", "1001", "--yes"], ["auth", "check"]])
def test_copper_backend_without_a_key_exits_3_clearly(run, sample, command):
    before = (sample / "opportunities.jsonl").read_bytes()
    line = one_line_error(run("--backend", "copper", *command, expect=3))
    assert "no Copper API key" in line and "COPPER_API_KEY" in line
    assert (sample / "opportunities.jsonl").read_bytes() == before


def test_copper_backend_from_environment_or_profile(run, sample, monkeypatch):
    run("config", "set", "backend", "copper")
    assert "no Copper API key" in one_line_error(run("list", expect=3))
    assert show(run)["sources"]["backend"].startswith("profile 'default'")
    monkeypatch.setenv("OPPCLI_BACKEND", "copper")
    monkeypatch.setenv("COPPER_API_KEY", "k")
    assert "no email for the Copper API key" in one_line_error(run("list", expect=3))


def test_config_commands_work_with_the_copper_backend_selected(run, monkeypatch):
    monkeypatch.setenv("OPPCLI_BACKEND", "copper")
    assert show(run)["settings"]["backend"] == "copper"
    run("config", "set", "copper.user_email", "me@example.com")
    assert get(run, "copper.user_email") == "me@example.com"
