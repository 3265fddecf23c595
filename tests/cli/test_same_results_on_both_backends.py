"""One behaviour suite, two backends: the same commands over the same records give the same
output and the same exit codes from the local store and from Copper (the test server).

Each case runs twice, with `--backend local` over a store made by `oppcli init --sample` and
with `--backend copper` against tests/fakecopper.py seeded with the same sample data.
"""

from __future__ import annotations

import orjson
import pytest

from oppcli.domain import fields as F

pytestmark = pytest.mark.usefixtures("sample", "copper")

SEARCHES = [
    ["list"],
    ["list", "-n", "5"],
    ["list", "--sort", "name", "--asc"],
    ["list", "--sort", "monetary_value", "--desc", "-n", "7"],
    ["search", "--status", "open"],
    ["search", "--status", "won,lost", "--sort", "close_date"],
    ["search", "--priority", "high"],
    ["search", "--priority", "none,low", "-n", "4"],
    ["search", "--assignee", "Ada Park"],
    ["search", "--assignee", "none"],
    ["search", "--assignee", "ben.okafor@example.com,103"],
    ["search", "--pipeline", "Renewals"],
    ["search", "--stage", "Sales/Negotiation"],
    ["search", "--pipeline", "Renewals", "--stage", "Qualified"],
    ["search", "--company", "Contoso Ltd"],
    ["search", "--company", "none"],
    ["search", "--primary-contact", "Nancy Davolio"],
    ["search", "--primary-contact", "andrew@contoso.example"],
    ["search", "--source", "none"],
    ["search", "--source", "Trade Show,Referral"],
    ["search", "--loss-reason", "Competitor,Timing"],
    ["search", "--tag", "enterprise"],
    ["search", "--tag", "HOT", "--tag", "renewal"],
    ["search", "--min-value", "50000"],
    ["search", "--max-value", "20000", "--sort", "monetary_value"],
    ["search", "--min-value", "20000", "--max-value", "60000", "--status", "open"],
    ["search", "--close-after", "2026-06-01", "--close-before", "2026-09-30"],
    ["search", "--created-after", "2026-02-01", "--created-before", "2026-03-15"],
    ["search", "--modified-after", "2026-03-01"],
    ["search", "--custom-field", "Region=EMEA"],
    ["search", "--custom-field", "Region=EMEA,APAC", "--status", "open"],
    ["search", "--custom-field", "Region="],
    ["search", "--custom-field", "Contract Months>=24"],
    ["search", "--custom-field", "Contract Months<=12"],
    ["search", "--custom-field", "Signed NDA=no"],
    ["search", "--custom-field", "Signed NDA=yes"],
    ["search", "--custom-field", "Competitors=Globex"],
    ["search", "--custom-field", "Champion Notes=", "-n", "3"],
    ["search", "--name-contains", "licence"],
    ["search", "--name-contains", "a", "-n", "3"],
    ["search", "--name", "northwind traders - annual licence"],
    ["search", "--id", "1001,1005", "--id", "1010"],
    ["search", "--status", "open", "--stage", "Sales/Negotiation", "--min-value", "10000"],
    ["search", "--status", "won", "--tag", "enterprise", "--min-value", "5000", "--sort", "name"],
]
SORTS = [s for s in F.SORTABLE if s != "custom_fields"]
FORMATS = ["json", "jsonl", "csv", "tsv"]
ERRORS = [
    (["search", "--stage", "Nope"], 4),
    (["search", "--stage", "Qualified"], 6),
    (["search", "--assignee", "Nobody At All"], 4),
    (["search", "--company", "No Such Company"], 4),
    (["search", "--min-value", "lots"], 2),
    (["search", "--id", "99999999999999999999"], 2),
    (["update", "1001", "--assignee-id", "99999999999999999999"], 2),
    (["search", "--custom-field", "Region=Mars"], 2),
    (["search", "--custom-field", "Nope=1"], 4),
    (["list", "--fields", "id,nope"], 2),
    (["list", "--sort", "nope"], 2),
    (["show", "999999"], 4),
    (["show", "No such deal"], 4),
    (["update", "999999", "--status", "Won"], 4),
    (["update", "1001", "--status", "Sold"], 2),
    (["update", "1001", "--stage", "Nope"], 4),
    (["update", "1001", "--assignee-id", "999"], 4),
    (["delete", "999999", "--yes"], 4),
    (["delete", "1001", "999999", "--yes"], 4),
    (["create", "--name", "No contact"], 2),
    (["create", "--name", "X", "--primary-contact", "Nobody At All"], 4),
    (["create", "--name", "X", "--primary-contact-id", "601", "--stage", "Nope"], 4),
    (["create", "--name", "X", "--primary-contact-id", "601", "--win-probability", "120"], 2),
]
# Written by the backend at the time of the write: cannot be equal across two servers.
CLOCK_FIELDS = ("date_created", "date_modified", "date_stage_changed")  # each backend's clock


def both(run, *args: str, expect: int | None = 0):
    local = run("--backend", "local", *args, expect=expect)
    remote = run("--backend", "copper", *args, expect=expect)
    return local, remote


def same(run, *args: str, expect: int | None = 0) -> str:
    local, remote = both(run, *args, expect=expect)
    assert remote.exit_code == local.exit_code
    assert remote.stdout == local.stdout, f"oppcli {' '.join(args)}"
    return local.stdout


@pytest.mark.parametrize("args", SEARCHES, ids=" ".join)
def test_searches_give_the_same_json(run, args):
    out = same(run, *args, "-o", "json")
    assert orjson.loads(out), "a case that finds nothing compares nothing"


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_is_the_same(run, fmt):
    same(run, "search", "--status", "open,won", "--sort", "name", "-o", fmt)
    same(run, "list", "-n", "6", "-o", fmt, "--fields", "id,name,tags,custom_fields,close_date")


@pytest.mark.parametrize("direction", ["--asc", "--desc"])
@pytest.mark.parametrize("field", SORTS)
def test_every_sort_is_the_same(run, field, direction):
    out = same(run, "list", "--sort", field, direction, "-o", "jsonl", "--fields", "id," + field)
    assert len(out.splitlines()) == 36


def test_a_limit_below_and_above_a_page(run, copper):
    assert len(orjson.loads(same(run, "list", "-n", "1", "-o", "json"))) == 1
    assert len(orjson.loads(same(run, "list", "-n", "500", "-o", "json"))) == 36


@pytest.mark.parametrize("args,code", ERRORS, ids=lambda v: " ".join(v) if isinstance(v, list) else str(v))
def test_errors_have_the_same_exit_code_and_change_nothing(run, copper, args, code):
    before = dict(copper.records)
    local, remote = both(run, *args, expect=code)
    assert local.stdout == remote.stdout == ""
    assert remote.stderr.startswith("oppcli: error: ")
    assert copper.records == before


def test_show_is_the_same(run):
    for fmt in ("json", "csv"):
        same(run, "show", "1001", "-o", fmt)
        same(run, "show", "Contoso Ltd - Analytics Add-on", "-o", fmt)


def test_lookups_are_the_same_except_companies_and_people(run):
    for table in ("pipelines", "stages", "users", "customer_sources", "loss_reasons",
                  "custom_field_definitions"):
        same(run, "lookups", table, "-o", "json")


def _masked(text: str) -> object:
    data = orjson.loads(text)
    rows = data if isinstance(data, list) else [data]
    for r in rows:
        for key in CLOCK_FIELDS:
            if key in r:
                r[key] = "<clock>"
    return data


def both_masked(run, *args: str, expect: int = 0) -> object:
    local, remote = both(run, *args, "-o", "json", expect=expect)
    assert _masked(remote.stdout) == _masked(local.stdout), f"oppcli {' '.join(args)}"
    assert _batch_masked(remote.stderr) == _batch_masked(local.stderr)
    return _masked(local.stdout)


def _batch_masked(text: str) -> str:
    """A bulk change's audit batch id (random) named in a notice, masked."""
    import re

    return re.sub(r"oppcli undo [0-9a-f]{8}", "oppcli undo <batch>", text)


def test_writes_give_the_same_records(run):
    created = both_masked(run, "create", "--name", "Parity Deal", "--primary-contact",
                          "Nancy Davolio", "--monetary-value", "12000", "--tag", "new,hot",
                          "--custom-field", "Region=APAC", "--close-date", "2026-12-24")
    assert created["id"] == 1037 and created["company_id"] == 501  # the contact's company
    both_masked(run, "create", "--name", "Renewal", "--primary-contact-id", "602",
                "--stage", "Renewals/Quote Sent", "--assignee", "Carla Reyes", "--status", "Won")
    both_masked(run, "update", "1037", "--stage", "Negotiation", "--add-tag", "big",
                "--remove-tag", "hot", "--custom-field", "Contract Months=24")
    both_masked(run, "update", "1037", "--clear", "close_date", "--clear", "tags",
                "--priority", "High", "--details", "Line one\nline two")
    both_masked(run, "update", "1037", "--pipeline", "Renewals")  # takes its first stage
    both_masked(run, "update", "1001", "--status", "Lost", "--loss-reason", "Competitor",
                "--clear", "monetary_value", "--custom-field", "Region=")
    both_masked(run, "update", "1001", "--status", "Lost")  # no change: nothing written
    both_masked(run, "update", "Contoso Ltd - Analytics Add-on", "--win-probability", "33")
    both_masked(run, "delete", "1002", "1037", "--yes")
    both_masked(run, "show", "1001")
    # The default order is newest-modified first, and each backend stamps its writes with its own
    # clock: a write that lands in the same second as the one before on one backend and in the
    # next second on the other orders the two differently. So these listings sort by name (ties
    # by id), which the writes above decide alone.
    for args in (["list"], ["search", "--tag", "big"], ["search", "--status", "lost"]):
        both_masked(run, *args, "--sort", "name", "--asc")
    same(run, "show", "1002", expect=4)


def test_from_json_create_round_trips_through_both(run, tmp_path):
    record = run.json("--backend", "local", "show", "1003")
    path = tmp_path / "deal.json"
    path.write_bytes(orjson.dumps({**record, "name": "Copy of 1003"}))
    created = both_masked(run, "create", "--from-json", str(path))
    assert created["name"] == "Copy of 1003" and created["id"] == 1037


def test_help_names_the_sorts_copper_cannot_do():
    from oppcli.cli.commands.read import SortOpt

    help_text = SortOpt.__metadata__[0].help
    assert all(name in help_text for name in F.CLIENT_SORTED)
    assert set(F.CLIENT_SORTED) == set(F.SORTABLE) - set(F.COPPER_SORT)


def test_day_first_close_dates_are_the_same_on_both(run, store_path, monkeypatch):
    """A Copper user with the DD/MM/YYYY preference: date_order DMY on both sides."""
    from conftest import API_KEY, USER_EMAIL, copper_env
    from fakecopper import FakeCopper
    from oppcli.domain.sample import SAMPLE_LOOKUPS, sample_records

    monkeypatch.setenv("OPPCLI_DATE_ORDER", "DMY")
    other = store_path.parent / "dmy-store"
    monkeypatch.setenv("OPPCLI_STORE", str(other))
    run("--backend", "local", "init", "--sample")
    server = FakeCopper(lookups=SAMPLE_LOOKUPS, records=sample_records(date_order="DMY"),
                        api_key=API_KEY, user_email=USER_EMAIL, date_order="DMY")
    with server:
        for k, v in copper_env(server.url).items():
            monkeypatch.setenv(k, v)
        out = same(run, "search", "--close-after", "01/06/2026", "--close-before", "2026-09-30",
                   "--sort", "close_date", "-o", "jsonl", "--fields", "id,close_date")
        rows = [orjson.loads(line) for line in out.splitlines()]
        assert rows and all(int(r["close_date"].split("/")[1]) in range(6, 10) for r in rows)
        same(run, "list", "--sort", "close_date", "--desc", "-o", "csv")
        both_masked(run, "create", "--name", "DMY deal", "--primary-contact-id", "601",
                    "--close-date", "24/12/2026")
        both_masked(run, "update", "1037", "--close-date", "2027-01-31")
        assert run.json("--backend", "copper", "show", "1037")["close_date"] == "31/1/2027"
