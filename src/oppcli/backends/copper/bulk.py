"""A bulk change on Copper: one request per deal (Copper has no bulk endpoint for
opportunities), several in flight on the request pool, all paced by the one shared limiter.

The main thread hands out requests and is told each answer as it comes; it asks `stopping()`
before each new request, so a Ctrl-C (held by the caller) sends nothing more, waits for the
requests in flight and tells their outcomes: no deal changed on Copper goes unrecorded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from oppcli.backends.base import Change, Done, Outcome, Stopping
from oppcli.domain.records import apply_changes, changed_fields, check_refs, refs_to_check, trimmed
from oppcli.errors import NotFoundError, OppcliError, ends_the_run

if TYPE_CHECKING:
    from concurrent.futures import Future

    from oppcli.backends.copper.backend import CopperBackend
    from oppcli.backends.copper.pool import PagePool

Record = dict[str, Any]


def fan_out(pool: PagePool, func: Callable[[Change], Outcome], items: Iterable[Change],
            done: Done, stopping: Stopping) -> None:
    """func(item) for each item on the pool, at most 2 x workers in flight; each Outcome to
    `done` on this thread as it comes. An error that ends the run stops new requests; it is
    raised once the requests in flight have answered and been told."""
    from concurrent.futures import FIRST_COMPLETED, wait

    todo = iter(items)
    pending: set[Future[Outcome]] = set()
    fatal: BaseException | None = None
    try:
        while True:
            while fatal is None and len(pending) < 2 * pool.workers and not stopping():
                item = next(todo, None)
                if item is None:
                    break
                pending.add(pool.submit(func, item))
            if not pending:
                break
            if fatal is not None or stopping():  # what no worker has started is not sent
                pending = {future for future in pending if not future.cancel()}
                if not pending:
                    break
            finished, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            for future in finished:
                try:
                    outcome = future.result()
                except BaseException as exc:  # noqa: BLE001 -- kept, raised after the rest
                    fatal = fatal or exc
                    continue
                done(outcome)
    finally:
        for future in pending:  # stopped at once (a second signal): drop what has not started
            future.cancel()
    if fatal is not None:
        raise fatal


def update_one(backend: CopperBackend, item: Change) -> Outcome:
    """One deal's PUT (after a GET only when the caller had no record): its Outcome; an
    error of this deal alone (gone, refused by a 422) as the Outcome's error."""
    current: Record | None = item.current
    try:
        if current is None:
            current = backend.read(item.id)
        lookups = backend.lookups()
        new = apply_changes(current, item.changes, lookups)
        body = changed_fields(current, new)
        if not body:  # it has the values: nothing is sent
            kept = trimmed(current, current)[0]
            return Outcome(item.id, kept, kept, written=False)
        check_refs(refs_to_check(body, new), lookups)
        try:
            answer = backend.client.call("PUT", f"/opportunities/{item.id}", body,
                                         what=f"update opportunity {item.id}")
        except NotFoundError:
            raise NotFoundError(f"no opportunity with id {item.id} (deleted meanwhile?)") from None
        after = backend.record(answer.body, f"update opportunity {item.id}")
    except OppcliError as exc:
        if ends_the_run(exc):
            raise
        return Outcome(item.id, trimmed(current, current)[0] if current else None, error=exc)
    # A record cut down (search --fields) lacks fields the PUT did not touch: they are as
    # Copper's answer has them, so the change is only what really changed.
    before, now = trimmed({**after, **current}, after)
    return Outcome(item.id, before, now)


def delete_one(backend: CopperBackend, item: Change) -> Outcome:
    """One deal's DELETE (after a GET when the caller had no record: the audit log keeps the
    whole record, to bring it back). A deal already gone is an Outcome with NotFoundError."""
    try:
        current = item.current if item.current is not None else backend.read(item.id)
        try:
            backend.client.call("DELETE", f"/opportunities/{item.id}",
                                what=f"delete opportunity {item.id}")
        except NotFoundError:
            raise NotFoundError(f"no opportunity with id {item.id} (deleted already?)") from None
    except OppcliError as exc:
        if ends_the_run(exc):
            raise
        return Outcome(item.id, item.current, error=exc)
    return Outcome(item.id, current, None)


def get_many(backend: CopperBackend, pool: PagePool, ids: list[int]) -> dict[int, Record]:
    """GET each id, several in flight; unknown ids left out."""
    found: dict[int, Record] = {}

    def one(item: Change) -> Outcome:
        try:
            return Outcome(item.id, backend.read(item.id))
        except NotFoundError as exc:
            return Outcome(item.id, error=exc)

    def keep(outcome: Outcome) -> None:
        if outcome.error is None and outcome.before is not None:
            found[outcome.id] = outcome.before

    fan_out(pool, one, (Change(i) for i in dict.fromkeys(ids)), keep, lambda: False)
    return found
