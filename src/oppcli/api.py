"""The library: a Session over one backend, with every operation the CLI offers.

    import oppcli
    with oppcli.connect(store="~/deals") as s:          # or backend="copper", profile="work"
        for deal in s.search(status="Open", stage="Sales/Negotiation", min_value=50000):
            print(deal["id"], deal["name"])
        d = s.create(name="Acme - Pilot", primary_contact="Nancy Davolio", monetary_value=12000)
        s.update(d["id"], stage="Sales/Presentation", add_tags=["hot"])
        s.delete(d["id"])
        s.undo()

Keywords are the CLI's flag names with underscores (domain/options.py declares them once);
a repeatable flag also takes its plural as a list. Errors are oppcli.errors.OppcliError
subclasses carrying the exit code the CLI would use. Every write goes through the audit log,
exactly as from the CLI. The session never prints: it returns values, and reports what a
person should know through its Streams (io.py).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from oppcli.domain import options as O
from oppcli.errors import ConflictError, NotFoundError, UsageError
from oppcli.io import Streams

if TYPE_CHECKING:
    from oppcli.backends.copper.http import Heard, HttpClient
    from oppcli.config import Settings
    from oppcli.domain.lookups import Lookups
    from oppcli.domain.query import Query
    from oppcli.domain.report import Forecast, Report
    from oppcli.ops.api_call import ApiResponse
    from oppcli.ops.audit import Audited, AuditLog
    from oppcli.ops.auth import AuthStatus, LoginResult, LogoutResult
    from oppcli.ops.bulk import BulkResult, Plan, Selection
    from oppcli.ops.edit import EditResult, Launch
    from oppcli.ops.report import Stale
    from oppcli.ops.sync import PullResult
    from oppcli.ops.undo import UndoResult

Record = dict[str, Any]


def connect(*, store: str | Path | None = None, backend: str | None = None,
            profile: str | None = None, refresh: bool = False, debug: bool = False,
            streams: Streams | None = None) -> Session:
    """A Session on the selected backend: `store` (a local store directory), `backend`
    ("local" or "copper"), `profile` (from the config file); the same precedence as the CLI
    (argument > OPPCLI_* environment > profile > defaults). Nothing is opened until used."""
    return Session(store=store, backend=backend, profile=profile, refresh=refresh, debug=debug,
                   streams=streams)


class Session:
    def __init__(self, *, store: str | Path | None = None, backend: str | None = None,
                 profile: str | None = None, refresh: bool = False, debug: bool = False,
                 streams: Streams | None = None) -> None:
        self.flags: dict[str, Any] = {"store": str(store) if store else None, "backend": backend}
        self.profile = profile
        self.refresh = refresh
        self.debug = debug
        self.streams = streams if streams is not None else Streams.system()
        self._settings: Settings | None = None
        self._login_settings: Settings | None = None  # login(): a profile not created yet allowed
        self._backend: Audited | None = None
        self._api_client: HttpClient | None = None  # api(): Copper's, made on first use

    def __enter__(self) -> Session:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._backend = None

    # ---- what the session is connected to ---------------------------------------------------
    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from oppcli.config import load_settings

            self._settings = load_settings(profile=self.profile, flags=self.flags)
        return self._settings

    @property
    def backend(self) -> Audited:
        """The selected backend, every change through it written to the audit log."""
        if self._backend is None:
            from oppcli.backends.base import open_backend
            from oppcli.ops.audit import Audited

            inner = open_backend(self.settings, debug=self.debug, refresh=self.refresh,
                                 notice=self.streams.notice)
            self._backend = Audited(inner, self.audit_log(), notice=self.streams.warn)
        return self._backend

    def reopen(self, *, refresh: bool) -> None:
        """Open the backend again on next use (`lookups --refresh` fetches Copper's tables)."""
        self.refresh = refresh
        self._backend = None

    def audit_log(self) -> AuditLog:
        """The audit log, labelled with the selected backend; reading it opens no backend, so
        history needs no key and no network."""
        from oppcli.backends.base import describe
        from oppcli.ops.audit import AuditLog, audit_path

        settings = self.settings
        name, where = describe(settings)
        return AuditLog(audit_path(), backend=name, where=where, profile=settings.profile)

    def lookups(self) -> Lookups:
        """Pipelines with stages, users, sources, loss reasons, custom field definitions."""
        return self.backend.lookups()

    @property
    def date_order(self) -> str:
        """The order dates people type are read in (MDY or DMY)."""
        return self.settings.date_order

    # ---- reading ------------------------------------------------------------------------------
    def query(self, *, sort: str | None = None, asc: bool | None = None,
              limit: int | None = None, saved: str | None = None, **filters: Any) -> Query:
        """The Query for search's filters (names resolved, dates parsed, all validated);
        `saved`: a saved search's filters and sort under them (a filter given replaces the
        saved one of its kind, the others are ANDed)."""
        from oppcli.domain.criteria import build_query, sort_options
        from oppcli.domain.query import Query

        given, sort, asc = self._filters(filters, saved, sort, asc)
        query = build_query(_search_options(given), self.backend.lookups(), self.date_order) \
            if given else Query()
        query.sort_by, query.descending = sort_options(sort, asc)
        if limit is not None:
            if isinstance(limit, bool) or not isinstance(limit, int) or not 0 <= limit < 2**63:
                raise UsageError(f"limit must be a whole number from 0 to 2**63 - 1, not {limit!r}")
            query.limit = limit
        return query

    def search(self, *, sort: str | None = None, asc: bool | None = None,
               limit: int | None = None, saved: str | None = None,
               **filters: Any) -> Iterator[Record]:
        """The deals matching every filter, streamed (an iterator), newest change first unless
        `sort` (a field) and `asc` say otherwise; `saved`: a saved search's filters too."""
        return self.backend.search(self.query(sort=sort, asc=asc, limit=limit, saved=saved,
                                              **filters))

    # ---- saved searches (ops/saved.py) --------------------------------------------------------
    def saved_searches(self) -> dict[str, dict[str, Any]]:
        """The profile's saved searches by name: {filter: value, ..., "sort", "asc"}."""
        from oppcli.ops import saved

        return saved.all_saved(self.settings.profile)

    def saved_search(self, name: str) -> dict[str, Any]:
        """One saved search; NotFoundError (naming the others) when there is none."""
        from oppcli.ops import saved

        return saved.get(self.settings.profile, name)

    def save_search(self, name: str, /, *, sort: str | None = None, asc: bool | None = None,
                    saved: str | None = None, **filters: Any) -> dict[str, Any]:
        """Keep these filters (and sort) in the profile as `name` (replacing one saved under
        it), after checking they resolve; `saved`: start from another saved search. Returns
        what was saved."""
        from oppcli.domain.criteria import sort_options
        from oppcli.ops import saved as S

        name = S.check_name(name)
        given, sort, asc = self._filters(filters, saved, sort, asc)
        if not given:
            raise UsageError(f"nothing to save as {name!r}: no filters given",
                             "e.g. oppcli search --status open --assignee Ada --save NAME")
        sort_options(sort, asc)  # a bad sort is refused before anything is kept
        self.query(**given)  # names resolve, values parse: else nothing is kept
        S.save(self.settings.profile, name, given, sort, asc)
        return self.saved_search(name)

    def delete_saved(self, name: str) -> None:
        from oppcli.ops import saved

        saved.delete(self.settings.profile, name)

    def _filters(self, filters: dict[str, Any], saved: str | None, sort: str | None,
                 asc: bool | None) -> tuple[dict[str, Any], str | None, bool | None]:
        """search's keywords gathered (options.gather), under a saved search's filters and
        sort when `saved` names one: (filters, sort, asc)."""
        given = O.gather(O.FILTERS, filters, "search")
        if saved is None:
            return given, sort, asc
        entry = self.saved_search(saved)
        if sort is None:  # the saved order, unless another is asked for (then its own default)
            sort, asc = entry.get("sort"), asc if asc is not None else entry.get("asc")
        return self._with_saved(saved, entry, given), sort, asc

    def _with_saved(self, name: str, entry: Mapping[str, Any],
                    given: dict[str, Any]) -> dict[str, Any]:
        """The saved filters under those given; a saved one that no longer resolves (a stage
        or owner gone) is an error naming the saved search."""
        from oppcli.domain.criteria import build_query
        from oppcli.errors import OppcliError
        from oppcli.ops import saved

        try:
            stored = O.gather(O.FILTERS, saved.filters_of(entry), "search")
            # Only what the given filters leave of it must resolve: `--assignee Ada` is the
            # way past a saved owner who has left.
            kept = {k: v for k, v in stored.items() if k not in given}
            build_query(_search_options(kept), self.backend.lookups(), self.date_order)
        except OppcliError as exc:
            raise type(exc)(f"saved search {name!r}: {exc.message}",
                            exc.hint or f"`oppcli saved show {name}` shows it") from None
        return saved.merge(stored, given)

    def find_id(self, opportunity: int | str) -> int:
        """An id, or the id of the one opportunity with this exact name."""
        from oppcli.domain.lookups import is_whole
        from oppcli.domain.query import Query

        if isinstance(opportunity, int) and not isinstance(opportunity, bool):
            return opportunity
        raw = str(opportunity).strip()
        if is_whole(raw):
            return int(raw)
        hits = list(self.backend.search(Query(name=raw, sort_by="id", descending=False,
                                              limit=20)))
        if not hits:
            raise NotFoundError(f"no opportunity named {raw!r}", "use the id, or `oppcli search "
                                "--name-contains TEXT` to look")
        if len(hits) > 1:
            listed = ", ".join(str(h["id"]) for h in hits)
            raise ConflictError(f"{len(hits)} opportunities are named {raw!r} (ids {listed})",
                                "give the id")
        return int(hits[0]["id"])

    def get(self, opportunity: int | str) -> Record:
        """One deal by id (or exact name); NotFoundError when there is none."""
        return self.backend.get(self.find_id(opportunity))

    # ---- writing ------------------------------------------------------------------------------
    def create(self, *, from_json: Mapping[str, Any] | None = None, **fields: Any) -> Record:
        """Create a deal from field keywords (and/or a whole record as `from_json`, in the
        API's shape; keywords override it); returns the stored record."""
        from oppcli.domain.changes import check_create, payload_from_json, without_nulls_kept

        given = O.gather(O.CREATE_OPTS, fields, "create")
        backend = self.backend
        base = (without_nulls_kept(payload_from_json(from_json, backend.lookups(),
                                                     backend.date_order()))
                if from_json is not None else None)
        payload = self.changes(given, base=base)
        check_create(payload)
        return backend.create(payload)

    def update(self, opportunity: int | str, *, from_json: Mapping[str, Any] | None = None,
               **changes: Any) -> Record:
        """Change only the given fields of one deal (keywords, and/or a partial record as
        `from_json`, in the API's shape; keywords override it); returns the updated record."""
        from oppcli.domain.changes import payload_from_json

        given = O.gather(O.UPDATE_OPTS, changes, "update")
        backend = self.backend
        opp_id = self.find_id(opportunity)
        base = (payload_from_json(from_json, backend.lookups(), backend.date_order())
                if from_json is not None else None)
        context_pipeline = None
        if given.get("stage") is not None and given.get("pipeline") is None:
            context_pipeline = backend.get(opp_id).get("pipeline_id")
        planned = self.changes(given, base=base, context_pipeline=context_pipeline)
        if not planned:
            raise UsageError("nothing to change", "give at least one field option, e.g. --status "
                             "Won; see `oppcli update --help`")
        return backend.update(opp_id, planned)

    def edit(self, opportunity: int | str, *, launch: Launch | None = None) -> EditResult:
        """Open one deal (id or exact name) in the user's editor ($VISUAL, else $EDITOR, else
        vi) as a TOML document with names for ids, and write the fields a person changed as
        one update (audited: undo takes it back). Nothing changed: nothing written. An invalid
        document opens again with the problems at the top when the Streams can prompt, else
        is a UsageError; ConflictError when the deal changed meanwhile. `launch(path)`, which
        returns the editor's exit status, replaces the editor (ops/edit.py)."""
        from oppcli.ops.edit import edit

        return edit(self, opportunity, launch=launch)

    def changes(self, given: Mapping[str, Any], *, base: Mapping[str, Any] | None = None,
                context_pipeline: int | None = None) -> dict[str, Any]:
        """Gathered field options (options.gather) -> the changes as update() applies them:
        names resolved, values parsed; `base` (a JSON object's fields) under them."""
        from oppcli.domain.changes import changes_from_options

        backend = self.backend
        plain = {o.name: given.get(o.name) for o in O.FIELD_OPTS}
        names = {o.name: given.get(o.name) for o in O.NAME_OPTS}
        return changes_from_options(
            plain, names, lookups=backend.lookups(), date_order=self.date_order,
            tags=given.get("tag"), add_tags=given.get("add_tag"),
            remove_tags=given.get("remove_tag"), custom=given.get("custom_field"),
            clear=given.get("clear"), base=base, context_pipeline=context_pipeline,
            store_order=backend.date_order())

    def to_delete(self, *opportunities: int | str) -> list[Record]:
        """The deals these ids (or names) name, each once; NotFoundError for an unknown one."""
        ids = [self.find_id(o) for o in opportunities]
        return [self.backend.get(i) for i in dict.fromkeys(ids)]

    def delete(self, *opportunities: int | str) -> list[Record]:
        """Delete deals, all or nothing (an unknown id deletes none); returns them as they
        were. A PartialFailure (exit 7) carries those deleted before a failure."""
        records = self.to_delete(*opportunities)
        return self.backend.delete([r["id"] for r in records])

    # ---- many deals at once (ops/bulk.py) ----------------------------------------------------
    def select(self, opportunities: Iterable[int | str] = (), *,
               records: Iterable[Mapping[str, Any]] = (),
               where: Mapping[str, Any] | None = None) -> Selection:
        """The deals a bulk change works on: ids (or exact names), records (as search prints
        them: they carry their own state, so Copper needs no GET for them), or search's
        filters as `where` (keywords as for search()). One kind only."""
        from oppcli.ops.bulk import Selection

        return Selection(ids=list(dict.fromkeys(self.find_id(o) for o in opportunities)),
                         records=[dict(r) for r in records], where=dict(where or {}))

    def plan_update(self, selection: Selection, *, from_json: Mapping[str, Any] | None = None,
                    **changes: Any) -> Plan:
        """What update_many would change, deal by deal (field -> [before, after]); nothing
        is written. Deals that already have the values are listed apart."""
        from oppcli.domain.changes import payload_from_json
        from oppcli.ops.bulk import plan_update

        given = O.gather(O.UPDATE_OPTS, changes, "update")
        base = (payload_from_json(from_json, self.backend.lookups(), self.backend.date_order())
                if from_json is not None else None)
        return plan_update(self, selection, given, base)

    def plan_delete(self, selection: Selection) -> Plan:
        """The deals delete_many would remove; nothing is written."""
        from oppcli.ops.bulk import plan_delete

        return plan_delete(self, selection)

    def apply(self, plan: Plan, *, leftovers: str | Path | None = None) -> BulkResult:
        """Write a plan as one audit batch (`undo(result.batch)` takes it all back). Returns
        what happened; a stop (Ctrl-C, SIGTERM, Copper failing) is in result.stopped and
        result.check() raises it, or PartialFailure when some deals failed. The ids not
        changed go to `leftovers` (default: a new oppcli-OP-not-done-TIME.txt here)."""
        from oppcli.ops.bulk import apply

        return apply(self.backend, self.streams, plan,
                     leftovers=Path(leftovers) if leftovers is not None else None)

    def update_many(self, opportunities: Iterable[int | str] = (), *,
                    records: Iterable[Mapping[str, Any]] = (),
                    where: Mapping[str, Any] | None = None,
                    from_json: Mapping[str, Any] | None = None, dry_run: bool = False,
                    **changes: Any) -> BulkResult:
        """Change many deals at once: plan, then (unless dry_run) apply; raises as
        BulkResult.check() does."""
        from oppcli.ops.bulk import BulkResult

        plan = self.plan_update(self.select(opportunities, records=records, where=where),
                                from_json=from_json, **changes)
        if dry_run:
            return BulkResult("update", changed=plan.previews, unchanged=plan.unchanged,
                              dry_run=True)
        result = self.apply(plan)
        result.check()
        return result

    def delete_many(self, opportunities: Iterable[int | str] = (), *,
                    records: Iterable[Mapping[str, Any]] = (),
                    where: Mapping[str, Any] | None = None, dry_run: bool = False) -> BulkResult:
        """Delete many deals at once, as one audit batch; raises as BulkResult.check()."""
        from oppcli.ops.bulk import BulkResult

        plan = self.plan_delete(self.select(opportunities, records=records, where=where))
        if dry_run:
            return BulkResult("delete", changed=plan.previews, dry_run=True)
        result = self.apply(plan)
        result.check()
        return result

    # ---- reports (ops/report.py) --------------------------------------------------------------
    def report(self, by: str | Sequence[str], **filters: Any) -> Report:
        """The matching deals grouped by one or two dimensions ("stage", "assignee",
        "close-month", "cf:Region", ...: domain.report.DIMENSIONS), each group's count, value,
        weighted value, average and win rate; `.total` counts each deal once."""
        from oppcli.ops.report import report

        return report(self, [by] if isinstance(by, str) else list(by), filters)

    def forecast(self, *, months: int = 6, today: dt.date | None = None,
                 **filters: Any) -> Forecast:
        """Open deals by expected close month, for `months` months from this one (in the
        account's zone, or `today`), with the overdue and undated ones apart and those closing
        later summed in `.later`."""
        from oppcli.ops.report import forecast

        return forecast(self, months, filters, today)

    def stale(self, *, days: int = 30, limit: int | None = None, now: float | None = None,
              **filters: Any) -> Stale:
        """Open deals with no activity (last contacted, stage changed, modified) for `days`
        days, most valuable first, then longest idle; `.idle(deal)` gives its idle days."""
        from oppcli.ops.report import stale

        return stale(self, days, filters, limit=limit, now=now)

    # ---- the audit log ------------------------------------------------------------------------
    def history(self, opportunity: int | None = None, *, limit: int | None = None,
                all_backends: bool = False, batch: str | None = None) -> list[dict[str, Any]]:
        """Changes made through oppcli on this backend (all with `all_backends`), newest first,
        at most `limit` (default 20). A bulk change is one line (ops.audit.by_batch) unless
        `opportunity` asks for one deal's entries; `batch` gives that batch's entries, one per
        deal (all of them unless `limit`)."""
        from oppcli.ops.audit import by_batch

        log = self.audit_log()
        entries = [e for e in log.entries() if (all_backends or log.holds(e))
                   and (opportunity is None or e.get("id") == opportunity)]
        if batch is not None:
            entries = [e for e in entries if e.get("batch") == batch.strip()]
            if not entries:
                raise NotFoundError(f"no batch {batch!r} in the audit log"
                                    + ("" if all_backends else f" of {log.where}"),
                                    "`oppcli history` lists the batches by their audit id")
            return entries[::-1][:limit]
        entries.reverse()
        return (entries if opportunity is not None else by_batch(entries))[:limit or 20]

    def undo(self, audit_id: str | None = None, *, force: bool = False, dry_run: bool = False,
             yes: bool = True) -> UndoResult:
        """Take back a change (the latest on this backend not undone yet, or `audit_id`): an
        update field by field, a delete by creating the deal again, a create by deleting it.
        ConflictError when the deal changed since, unless `force`. An undo that deletes asks
        the Streams to confirm unless `yes` (the library's default)."""
        from oppcli.ops.undo import undo

        backend = self.backend
        try:
            return undo(backend, audit_id, force=force, dry_run=dry_run, yes=yes,
                        streams=self.streams)
        finally:
            backend.undo_of = None  # later changes on this session are not undos of this one

    # ---- bulk ---------------------------------------------------------------------------------
    def export(self, output_file: str | Path | None = None, *, format: str = "jsonl",
               fields: list[str] | None = None, raw: bool = False, since: str | None = None,
               state_file: str | Path | None = None, overlap: int = 60,
               fail_empty: bool = False, excel: bool = False, **filters: Any) -> int:
        """Write the matching deals to `output_file` atomically (None: the session's stdout),
        in jsonl, json, csv or tsv; incremental with `state_file`. Returns the count. `excel`:
        a CSV that starts with a UTF-8 byte order mark."""
        from oppcli.ops.export import EXPORT_FORMATS, Export

        fmt = format.strip().lower()
        if fmt not in EXPORT_FORMATS:
            raise UsageError(f"unknown export format {format!r}",
                             "valid: " + ", ".join(EXPORT_FORMATS))
        if excel and fmt != "csv":
            raise UsageError(f"--excel makes a CSV for Excel, not {fmt}",
                             "leave -o out, or give -o csv")
        return Export(self, fmt=fmt, names=fields, raw=raw, since=since,
                      state_file=Path(state_file) if state_file is not None else None,
                      overlap=overlap,
                      output_file=Path(output_file) if output_file is not None else None,
                      fail_empty=fail_empty, excel=excel).run(**filters)

    def import_file(self, file: str | Path, *, data: bytes | None = None,
                    format: str | None = None, match: str = "id", on_conflict: str = "update",
                    on_missing: str = "create", keep_ids: bool = False, dry_run: bool = False,
                    failed_rows: str | Path | None = None, report: str = "text") -> Any:
        """Create or update deals from a file (JSON Lines, JSON, CSV, TSV), row by row; `file`
        "-" with `data` for bytes already read. Returns the per-row results; PartialFailure
        (exit 7) when a row fails, its rows kept in a failed-rows file to run again."""
        from oppcli.ops import importing

        importing.check_options(match, on_conflict, on_missing)
        name = str(file)
        if data is None:
            try:
                data = Path(file).read_bytes()
            except OSError as exc:
                raise UsageError(f"cannot read {file}: {exc.strerror}") from exc
        return importing.run(data, name, fmt=format, match=match, on_conflict=on_conflict,
                             dry_run=dry_run, report=report, backend=self.backend,
                             failed_rows=Path(failed_rows) if failed_rows is not None else None,
                             on_missing=on_missing, keep_ids=keep_ids, streams=self.streams)

    def pull(self, *, full: bool = False) -> PullResult:
        """Mirror the profile's Copper account into the local store (`store`), incrementally
        after the first pull; `full` pulls everything and drops what Copper deleted."""
        from oppcli.backends.copper import CopperBackend
        from oppcli.ops.sync import pull
        from oppcli.util.interrupts import terminate_cleanly

        settings = self.settings
        copper = CopperBackend.from_settings(settings, debug=self.debug,
                                             notice=self.streams.notice)
        with terminate_cleanly():
            return pull(copper, settings.store_path, date_order=settings.date_order, full=full)

    # ---- the Copper API key (ops/auth.py) -----------------------------------------------------
    def login(self, key: str, email: str | None = None, *, check: bool = True,
              keyring: bool = True) -> LoginResult:
        """Keep a Copper API key for the profile (`oppcli auth login`): first checked with
        Copper (GET /users/me with `email`, else the profile's copper.user_email; `check=False`:
        not), then stored in one place only, the system keyring when one is usable (and
        `keyring`), else the profile's 0600 config file; the other's older copy is removed.
        `email`, when given, is kept in the profile. A key Copper refuses stores nothing
        (ConfigError, exit 3). What it did is said through the Streams and returned; the
        profile need not exist yet. The session then reads its settings again."""
        from oppcli.ops import auth

        try:
            return auth.login(self._settings_for_login(), key, email=email, check=check,
                              keyring=keyring, streams=self.streams, debug=self.debug)
        finally:
            self._forget_credentials()

    def login_email(self) -> str | None:
        """The email login() checks and keeps the key with when given none: copper.user_email
        from the environment or the profile; None when there is none yet. Reads the config
        file (a profile not in it yet has the defaults), never the keyring."""
        from oppcli.ops import auth

        return auth.current_email(self._settings_for_login())

    def logout(self) -> LogoutResult:
        """Remove the profile's API key from the system keyring and the config file (`oppcli
        auth logout`); none stored is no error (result.removed False). COPPER_API_KEY and the
        email stay. A keyring that fails: ConfigError (exit 3), after the config file's copy
        is removed."""
        from oppcli.config import selected_profile
        from oppcli.ops import auth

        try:
            return auth.logout(selected_profile(self.profile)[0], streams=self.streams)
        finally:
            self._forget_credentials()

    def auth_status(self) -> AuthStatus:
        """Where the profile's API key comes from (`oppcli auth status`): environment, keyring
        or config file, the key masked, and every place holding one. A keyring that fails is
        warned about through the Streams and in .keyring.error; `.check()` raises ConfigError
        (exit 3) when there is no key anywhere. Asks nothing of Copper."""
        from oppcli.ops import auth

        return auth.status(self.settings, streams=self.streams)

    def _settings_for_login(self) -> Settings:
        if self._settings is not None:
            return self._settings
        if self._login_settings is None:
            from oppcli.config import load_settings

            self._login_settings = load_settings(profile=self.profile, flags=self.flags,
                                                 missing_ok=True)
        return self._login_settings

    def _forget_credentials(self) -> None:
        """After a login or logout: the settings, and what was opened with them, are read
        again on next use (the key, its place and the email may have changed)."""
        self._settings = self._login_settings = None
        self._backend = None
        self._api_client = None

    # ---- raw Copper requests (ops/api_call.py) ------------------------------------------------
    def api(self, method: str, path: str, data: Any = None, *,
            heard: Heard | None = None) -> ApiResponse:
        """One raw Copper request (`oppcli api`): s.api("GET", "/account").json(). `path` is
        relative to copper.url; `data` a value to send as JSON, or JSON text (str or bytes,
        sent as it is). Retried when safe (GET, POST .../search); anything else is sent once
        and, outside oppcli's model, not audited. UsageError on the local backend; an error
        status raises the OppcliError the CLI maps to its exit code. `heard(status_line,
        headers)` sees each answer as it arrives."""
        from oppcli.ops import api_call

        return api_call.request(self._copper_client(), method, path, data, heard=heard)

    def api_pages(self, path: str, data: Any = None, *,
                  heard: Heard | None = None) -> Iterator[list[Any]]:
        """Every page of a Copper search endpoint (POST `path`, e.g. "/people/search"), each a
        list: page_number 1, 2, ... of page_size 200 (unless `data` sets them) until a short
        page. Streamed: a page is fetched when the one before has been used."""
        from oppcli.ops import api_call

        return api_call.pages(self._copper_client(), path, data, heard=heard,
                              notice=self.streams.notice)

    def _copper_client(self) -> HttpClient:
        if self._api_client is None:
            from oppcli.ops.api_call import client_for

            self._api_client = client_for(self.settings, debug=self.debug,
                                          notice=self.streams.notice)
        return self._api_client


def _search_options(given: dict[str, Any]) -> Any:
    from oppcli.domain.criteria import SearchOptions

    values = {("ids" if k == "id" else k): v for k, v in given.items()}
    return SearchOptions(**values)
