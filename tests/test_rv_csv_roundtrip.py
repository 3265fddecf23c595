"""README: 'what export writes imports back unchanged'. transfer.py csv_payload strips every
cell (line 'text = unneutralise(cell.strip())') and reads an empty MultiSelect cell as null,
so an untouched CSV round trip rewrites records: [] -> null for an empty MultiSelect, and
leading/trailing white space of name/details is lost. Each nightly round trip also bumps
date_modified and fills the audit log."""

from __future__ import annotations


def test_csv_export_then_import_of_an_untouched_store_changes_nothing(run, sample, tmp_path):
    run("update", "1001", "--details", "notes\n", "-o", "json")
    out = tmp_path / "deals.csv"
    run("export", "-o", "csv", "--output-file", str(out))
    r = run("import", str(out))
    changed = [line for line in r.stderr.splitlines() if ": updated" in line]
    assert changed == [], changed
