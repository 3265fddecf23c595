"""One import row at a time: which deal a row is (by id, only among deals that existed before
the run started; or by exact name), and the create, update or skip it becomes. A create whose
answer was lost is looked up before it is called failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from oppcli import errors as E
from oppcli.domain import fields as F
from oppcli.domain.query import Query
from oppcli.domain.records import apply_changes, changed_fields, check_refs, refs_to_check
from oppcli.errors import OppcliError
from oppcli.ops.rows import (
    STARTED,
    UNCONFIRMED,
    Row,
    csv_payload,
    json_payload,
)

if TYPE_CHECKING:
    from oppcli.backends.base import Backend

Record = dict[str, Any]


@dataclass
class Result:
    row: Row
    action: str  # created, updated, unchanged, skipped, failed, unknown; "would ..." in a dry run
    id: int | None = None
    detail: str = ""
    row_id: int | None = None  # the id the row gave, when it had one

    @property
    def failed(self) -> bool:
        return self.action in ("failed", "would fail")

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"row": self.row.where, "action": self.action, "id": self.id}
        if self.row_id is not None and self.row_id != self.id:
            out["row_id"] = self.row_id  # the row's own id, when the deal's differs
        if self.failed or self.action == "unknown":
            out["error"] = self.detail
        elif self.detail:
            out["detail"] = self.detail
        return out

    def line(self) -> str:
        what = self.action + (f" {self.id}" if self.id is not None else "")
        notes = []
        if self.row_id is not None and self.row_id != self.id:
            notes.append(f"row id {self.row_id}")
        if self.detail:
            notes.append(self.detail)
        return f"{self.row.where}: {what}" + (f" ({'; '.join(notes)})" if notes else "")


def _seconds(value: Any, what: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise E.ValidationError(f"{what} must be Unix seconds, got {value!r}") from None


def _made_since(record: Record, started: int, remote: bool) -> bool:
    """Whether a deal was created at or after `started` (by the import a row is left from).
    Copper stamps by its own clock: a minute's slack there."""
    made = record.get("date_created")
    if not isinstance(made, int | float) or isinstance(made, bool):
        return False
    return made >= started - (60 if remote else 0)


def _holds(record: Record, payload: Record) -> bool:
    """Whether a record carries every plain value the row asked for."""
    for key, value in payload.items():
        if key in ("custom_fields", "tags") or value is None:
            continue
        if record.get(key) != value:
            return False
    return True


class Importer:
    """Decides and makes each row's change. A row's id matches only a deal that existed before
    the import started: never one this run created for another row (rows sharing an id are one
    deal: the first creates it, the later ones update it), and on the local store never an id
    the store had not issued when the run started."""

    def __init__(self, backend: Backend, *, match: str, on_conflict: str, dry_run: bool,
                 fmt: str, on_missing: str = "create", keep_ids: bool = False) -> None:
        self.backend = backend
        self.lookups = backend.lookups()
        self.date_order = backend.date_order()
        self.match = match
        self.on_conflict = on_conflict
        self.on_missing = on_missing
        self.keep_ids = keep_ids
        self.dry_run = dry_run
        self.fmt = fmt
        self.created_ids: set[int] = set()  # made by this run: never "confirm" a row with them
        self.by_row_id: dict[int, int | None] = {}  # a row id -> the deal this run made for it
        self.first_new_id: int | None = backend.next_id()
        self.writing = False  # inside a backend write: an interruption leaves it unknown
        self.row_started: int | None = None  # the row's STARTED mark, from a failed-rows file
        self._exclusive = backend.exclusive

    def close(self) -> None:
        self.by_row_id.clear()

    def one(self, row: Row, started: float) -> Result:
        fail = "would fail" if self.dry_run else "failed"
        if row.values is None:
            return Result(row, fail, detail=row.error or "unreadable")
        row_id: int | None = None
        try:
            row_id, payload, unconfirmed = self._payload(row.values)
            with self._exclusive():  # local store: find and write under one lock
                return self._one(row, row_id, payload, unconfirmed, started)
        except E.UncertainWrite as exc:
            return Result(row, fail, row_id=row_id, detail=str(exc))
        except (E.ServiceError, E.ConfigError):
            raise  # not this row's fault: the import stops
        except OppcliError as exc:
            return Result(row, fail, row_id=row_id, detail=str(exc))

    def _one(self, row: Row, row_id: int | None, payload: Record, unconfirmed: int | None,
             started: float) -> Result:
        existing = self._find(row_id, payload)
        if existing is None and row_id is not None and row_id in self.by_row_id:
            made = self.by_row_id[row_id]  # an earlier row of this file has this id
            if made is None:  # a dry run: it would have been created
                return Result(row, "would update", None, row_id=row_id,
                              detail=f"the deal an earlier row with id {row_id} would create")
            existing = self.backend.get(made)
        if existing is None and unconfirmed is not None:
            confirmed = self._confirm_unknown(row, payload, unconfirmed)
            if isinstance(confirmed, Result):
                return confirmed
            if confirmed is not None:
                self._made(confirmed, row_id)
                return Result(row, "created", confirmed["id"], row_id=row_id,
                              detail="made by an earlier, interrupted run; confirmed now")
        if existing is None:
            return self._missing(row, row_id, payload, started)
        return self._conflict(row, existing, payload, row_id)

    def _payload(self, values: dict[str, Any]) -> tuple[int | None, Record, int | None]:
        values = dict(values)
        self.row_started = _seconds(values.pop(STARTED, None), STARTED)
        mark = values.pop(UNCONFIRMED, None)
        unconfirmed = None
        if mark not in (None, ""):
            try:
                unconfirmed = int(mark)
            except (TypeError, ValueError):
                raise E.ValidationError(f"{UNCONFIRMED} must be Unix seconds, got {mark!r}") from None
        if self.fmt in ("csv", "tsv"):
            opp_id, payload = csv_payload(values, self.lookups, self.date_order,
                                          neutralised=self.fmt == "csv")
        else:
            opp_id, payload = json_payload(values, self.lookups, self.date_order)
        return opp_id, payload, unconfirmed

    def _find(self, opp_id: int | None, payload: Record) -> Record | None:
        if self.match == "id":
            if opp_id is None or opp_id in self.created_ids or opp_id in self.by_row_id:
                return None  # made by this run for another row, or for an earlier one
            if self.first_new_id is not None and opp_id >= self.first_new_id:
                return None  # the store had not issued it when the import started
            try:
                found: Record = self.backend.get(opp_id)
            except E.NotFoundError:
                return None  # an id from another store: created anew
            if self.row_started is not None and _made_since(found, self.row_started,
                                                            self.first_new_id is None):
                return None  # made by the run this row is left from, or later: not this row's
            return found
        name = payload.get("name")
        if not name:
            raise E.ValidationError("--match name needs a name in every row")
        hits = list(self.backend.search(Query(name=str(name), sort_by="id", descending=False,
                                              limit=3)))
        if len(hits) > 1:
            ids = ", ".join(str(h["id"]) for h in hits)
            raise E.ConflictError(f"{len(hits)} opportunities are named {name!r} (ids {ids})",
                                  "give ids in the file and use --match id")
        return hits[0] if hits else None

    def _missing(self, row: Row, row_id: int | None, payload: Record, started: float) -> Result:
        """A row that matches no deal: created, skipped or failed, as --on-missing says."""
        if row_id is not None and self.match == "id" and row_id not in self.by_row_id:
            if self.on_missing == "skip":
                return Result(row, "would skip" if self.dry_run else "skipped", None,
                              row_id=row_id, detail=f"no opportunity {row_id} to update")
            if self.on_missing == "error":
                raise E.NotFoundError(f"no opportunity {row_id} to update",
                                      "use --on-missing create to create it")
        return self._create(row, payload, started, row_id)

    def _keep(self, row_id: int | None) -> int | None:
        """The row's own id, when --keep-ids may keep it: the store had never issued it."""
        if not self.keep_ids or row_id is None or self.first_new_id is None:
            return None
        if row_id < self.first_new_id or row_id in self.created_ids or row_id in self.by_row_id:
            return None
        return row_id

    def _create(self, row: Row, payload: Record, started: float, row_id: int | None) -> Result:
        from oppcli.domain.changes import check_create, without_nulls_kept

        payload = without_nulls_kept(payload)
        if self.first_new_id is not None and row.values:  # the local store keeps the row's
            payload.update({k: v for k, v in row.values.items()  # read-only extras (Copper
                            if k in F.PASSTHROUGH})             # makes its own)
        check_create(payload)
        keep = self._keep(row_id)
        if self.dry_run:
            check_refs({k: v for k, v in payload.items() if v is not None}, self.lookups)
            if row_id is not None:
                self.by_row_id[row_id] = None
            return Result(row, "would create", keep, row_id=row_id)
        try:
            self.writing = True
            if keep is not None:
                record = self.backend.create(payload, keep_id=keep)
            else:
                record = self.backend.create(payload)
            self.writing = False
        except E.UncertainWrite as exc:
            self.writing = False
            found = self._made_anyway(payload, started)
            if not isinstance(found, dict):
                return Result(row, "unknown", row_id=row_id, detail=f"{exc.message}; {found}")
            self._made(found, row_id)
            self.backend.record_confirmed_create(found)  # into the audit log, like any create
            return Result(row, "created", found["id"], row_id=row_id,
                          detail="confirmed after a lost answer")
        self._made(record, row_id)
        return Result(row, "created", record["id"], row_id=row_id)

    def _made(self, record: Record, row_id: int | None) -> None:
        self.created_ids.add(record["id"])
        if row_id is not None:
            self.by_row_id[row_id] = record["id"]

    def _like(self, payload: Record, since: int) -> list[Record]:
        """Deals created since `since` (Unix seconds) that hold the row's values and that this
        run did not make for another row: what a create whose outcome is unknown left."""
        query = Query(name=str(payload.get("name") or ""), created_min=since, sort_by="id",
                      descending=False)
        return [h for h in self.backend.search(query)
                if h["id"] not in self.created_ids and _holds(h, payload)]

    def _made_anyway(self, payload: Record, since: float) -> Record | str:
        """After a create whose answer was lost: the deal, if it was made since `since`; else
        why that is not known."""
        try:
            hits = self._like(payload, int(since) - 5)
        except OppcliError as exc:
            return f"the search to find out whether it was made failed too ({exc.message})"
        if len(hits) == 1:
            return hits[0]
        if not hits:
            return "no such deal shows in a search yet"
        return f"{len(hits)} deals like it were made since ({', '.join(str(h['id']) for h in hits)})"

    def _confirm_unknown(self, row: Row, payload: Record, since: int) -> Record | Result | None:
        """A row an earlier run left unknown: the deal it made, or None when it made none (the
        row is then created), or an unknown Result when that cannot be told."""
        if self.dry_run:
            return None
        try:
            hits = self._like(payload, since)
        except OppcliError as exc:
            if E.ends_the_run(exc):
                raise
            hits = []
        if len(hits) > 1:
            return Result(row, "unknown", None, detail=f"{len(hits)} deals like it were made "
                          f"since then ({', '.join(str(h['id']) for h in hits)}): check them "
                          "and remove the row, or its " + UNCONFIRMED)
        if not hits:
            return None
        found = hits[0]
        self.backend.record_confirmed_create(found)
        return found

    def _conflict(self, row: Row, existing: Record, payload: Record,
                  row_id: int | None = None) -> Result:
        opp_id = existing["id"]
        if self.on_conflict == "skip":
            return Result(row, "would skip" if self.dry_run else "skipped", opp_id,
                          row_id=row_id, detail=f"matches {opp_id} by {self.match}")
        if self.on_conflict == "error":
            raise E.ConflictError(f"matches opportunity {opp_id} by {self.match}",
                                  "use --on-conflict update or skip")
        changes = {k: v for k, v in payload.items()
                   if not (self.fmt in ("csv", "tsv") and v is None and existing.get(k) == "")}
        # (an empty cell is null, and also what a "" was exported as: "" stays "")
        if "custom_fields" in changes and self.fmt in ("csv", "tsv"):
            held = {c.get("custom_field_definition_id"): c.get("value")
                    for c in existing.get("custom_fields") or []}
            changes["custom_fields"] = [c for c in changes["custom_fields"] if not (
                c["value"] is None and held.get(c["custom_field_definition_id"]) == "")]
        new = apply_changes(existing, changes, self.lookups)
        diff = changed_fields(existing, new)
        if not diff:
            return Result(row, "unchanged", opp_id, row_id=row_id)
        fields = ", ".join(diff)
        if self.dry_run:
            check_refs(refs_to_check(diff, new), self.lookups)
            return Result(row, "would update", opp_id, row_id=row_id, detail=fields)
        self.writing = True
        self.backend.update(opp_id, changes, current=existing)
        self.writing = False
        return Result(row, "updated", opp_id, row_id=row_id, detail=fields)
