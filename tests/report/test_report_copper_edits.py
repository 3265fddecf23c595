"""A deal edited on Copper while a report is paging (a colleague at work) is still counted, once:
the report reads oldest change first, by keyset, so the edit moves the deal behind the cursor,
where the fetch reaches it. (Newest first, it would move to ground already covered and drop out
of the numbers.) With concurrency allowed by the profile, a report still sends one request per
page."""

from __future__ import annotations

import subprocess

import orjson

from conftest import API_KEY, USER_EMAIL, copper_env, derived_records, oppcli_exe
from fakecopper import FakeCopper
from oppcli.domain.sample import SAMPLE_LOOKUPS

T0 = 1_700_000_000
COUNT = 700


def _records() -> list[dict]:
    recs = derived_records(COUNT)
    for i, r in enumerate(recs):
        r["date_modified"] = T0 + i  # deal i + 1 is the (i + 1)th oldest change
        r["monetary_value"] = 1000
        r["status"] = "Open"
    return recs


MIDDLE = COUNT // 2  # on a page neither order has read after its first


class EditsAMiddleDeal(FakeCopper):
    """After the first page is served, a colleague raises the value of a deal from the middle
    of the order: it moves to the end of it, newest of all."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.armed = True
        self.edited: int | None = None

    def _search(self, body):
        resp = super()._search(body)
        if self.armed and body.get("page_size") == 200:
            self.armed = False
            self.edited = MIDDLE
            self._update(MIDDLE, {"monetary_value": 5000})
        return resp


def test_a_deal_edited_during_a_report_is_counted_once(tmp_path):
    srv = EditsAMiddleDeal(lookups=SAMPLE_LOOKUPS, records=_records(), api_key=API_KEY,
                             user_email=USER_EMAIL)
    with srv:
        env = {**copper_env(srv.url, OPPCLI_COPPER_CONCURRENCY="4"),
               "OPPCLI_CONFIG_DIR": str(tmp_path / "cfg"), "PATH": "/usr/bin:/bin"}
        before = len(srv.calls("/opportunities/search"))
        proc = subprocess.run([oppcli_exe(), "report", "--by", "status", "-o", "json"], env=env,
                              capture_output=True, text=True, timeout=120)
        searches = srv.calls("/opportunities/search")[before:]
    assert proc.returncode == 0, proc.stderr
    assert srv.edited == MIDDLE, "the edit never happened: the test tests nothing"
    rows = orjson.loads(proc.stdout)
    assert [(r["status"], r["count"]) for r in rows] == [("Open", COUNT)]
    # Each deal once, the edited one as it is now: it was not read before the edit.
    assert rows[0]["value"] == COUNT * 1000 + 4000
    # One request per page, in order: no probe for the newest change, no pages ahead.
    assert all(c.body["page_number"] == 1 and c.body["sort_direction"] == "asc" for c in searches)
    assert len(searches) == 4, [c.body for c in searches]
