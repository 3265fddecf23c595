"""--custom-field NAME=a,b on a MultiSelect means "holds any of a, b" on both backends, and the
Copper body says so (`option: ANY`): Copper documents no default for `option`, so a search that
left it out could mean ALL (or anything) there. Repeating the criterion asks for all of them.
"""

from __future__ import annotations

import pytest

from conftest import API_KEY, USER_EMAIL, build_store, copper_env

COMPETITORS = 404
ACME, GLOBEX, INITECH = 4041, 4042, 4043
VALUES = [[], [ACME], [GLOBEX], [ACME, GLOBEX], [INITECH], [ACME, INITECH], None,
          [GLOBEX, INITECH], [ACME, GLOBEX, INITECH]]


def records() -> list[dict]:
    from oppcli.domain.sample import sample_records

    out = []
    for i, rec in enumerate(sample_records()):
        rec = dict(rec)
        rec["custom_fields"] = [
            {**cf, "value": VALUES[i % len(VALUES)]} if cf["custom_field_definition_id"] == COMPETITORS
            else cf for cf in rec["custom_fields"]]
        out.append(rec)
    return out


def _fake_class():
    from fakecopper import FakeCopper

    class UndefinedDefault(FakeCopper):
        """A Copper whose `option`, when left out, is ALL: the API documents no default."""

        def _cf_test(self, crit):
            if isinstance(crit, dict) and "option" not in crit and isinstance(crit.get("value"), list):
                crit = {**crit, "option": "ALL"}
            return super()._cf_test(crit)
    return UndefinedDefault


@pytest.fixture
def server(store_path, monkeypatch):
    from oppcli.domain.sample import SAMPLE_LOOKUPS

    recs = records()
    build_store(store_path, recs)
    srv = _fake_class()(lookups=SAMPLE_LOOKUPS, records=recs, api_key=API_KEY, user_email=USER_EMAIL)
    with srv:
        for key, value in copper_env(srv.url).items():
            monkeypatch.setenv(key, value)
        yield srv


def competitors(rec: dict) -> list[int]:
    return next(cf["value"] for cf in rec["custom_fields"]
                if cf["custom_field_definition_id"] == COMPETITORS) or []


def ids(run, backend: str, *args: str) -> list[int]:
    return [r["id"] for r in run.json("--backend", backend, "search", *args, "--sort", "id")]


@pytest.mark.parametrize("args,wanted", [
    (["--custom-field", "Competitors=Acme CRM,Globex"], lambda have: bool({ACME, GLOBEX} & set(have))),
    (["--custom-field", "Competitors=Initech"], lambda have: INITECH in have),
    (["--custom-field", "Competitors=Acme CRM", "--custom-field", "Competitors=Globex"],
     lambda have: {ACME, GLOBEX} <= set(have)),
], ids=["any of two", "one", "all of two (repeated)"])
def test_option_lists_mean_any_of_them_on_both_backends(run, server, args, wanted):
    expected = [r["id"] for r in records() if wanted(competitors(r))]
    assert expected and len(expected) < len(records())
    assert ids(run, "local", *args) == expected
    assert ids(run, "copper", *args) == expected


def test_the_copper_body_sends_option_any(run, server):
    ids(run, "copper", "--custom-field", "Competitors=Acme CRM,Globex", "--custom-field",
        "Region=EMEA")
    crits = server.calls("/opportunities/search", "POST")[-1].body["custom_fields"]
    assert {"custom_field_definition_id": COMPETITORS, "value": [ACME, GLOBEX],
            "option": "ANY"} in crits
    region = next(c for c in crits if c["custom_field_definition_id"] == 401)
    assert "option" not in region  # a Dropdown holds one option: any of them is all it can mean
