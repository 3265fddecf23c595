"""local.py:530 stamps an update max(now, previous + 1): a record updated N times within a few
seconds gets a date_modified up to N seconds in the future. export's state takes the highest
date_modified as its high-water mark (transfer.py:473), so once one record has run more than
--overlap seconds ahead, every other record modified in the meantime has a stamp below
high_water - overlap and is never exported by the incremental job."""

from __future__ import annotations

import orjson

from conftest import build_store, derived_records
from oppcli.backends.local import LocalStore


def test_a_busy_record_does_not_hide_other_changes_from_the_incremental_export(run, store_path,
                                                                                 tmp_path):
    build_store(store_path, derived_records(5))
    store = LocalStore.open(store_path)
    for i in range(90):  # e.g. a script or an import file touching one deal 90 times
        store.update(1, {"monetary_value": 1000 + i})
    state = tmp_path / "deals.state"
    run("export", "--state-file", str(state))
    store.update(2, {"monetary_value": 4242})  # a real change, made after that export
    out = run("export", "--state-file", str(state)).stdout
    ids = [orjson.loads(x)["id"] for x in out.splitlines() if x.strip()]
    assert 2 in ids, "record 2 was modified after the last export but is never exported"
