"""The request pool: a few daemon threads that fetch search pages ahead of the reader, in
order, and send a bulk change's requests, several in flight."""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable, Generator, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import queue
    from concurrent.futures import Future

    from oppcli.domain.query import Query

T = TypeVar("T")


class PagePool:
    """A few daemon threads that fetch pages; results come back in the order asked for.

    Daemon threads, so an interrupted export exits at once instead of waiting for answers
    nobody will read. At most 2 x workers pages are held ahead of the reader.
    """

    def __init__(self, workers: int) -> None:
        import queue

        self.workers = workers
        self.jobs: queue.SimpleQueue[
            tuple[Future[Any], Callable[..., Any], tuple[Any, ...], dict[str, Any]]] = queue.SimpleQueue()
        for i in range(workers):
            threading.Thread(target=self._work, name=f"oppcli-page-{i}", daemon=True).start()

    def _work(self) -> None:
        while True:
            future, func, args, kwargs = self.jobs.get()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(func(*args, **kwargs))
            except BaseException as exc:  # handed to the reader, who raises it
                future.set_exception(exc)

    def submit(self, func: Callable[..., T], *args: Any) -> Future[T]:
        """Run func(*args) on a worker; its Future."""
        from concurrent.futures import Future

        future: Future[T] = Future()
        self.jobs.put((future, func, args, {}))
        return future

    def ordered(self, func: Callable[..., T], query: Query, pages: Iterable[int],
                page_size: int, first_number: int) -> Generator[T, None, None]:
        """func(query, page, page_size, number=n) for each page, n counting from
        first_number: the results in the order of `pages`, fetched ahead."""
        from concurrent.futures import Future

        pending: collections.deque[Future[T]] = collections.deque()
        todo = iter(pages)
        number = first_number

        def submit() -> bool:
            nonlocal number
            page = next(todo, None)
            if page is None:
                return False
            future: Future[T] = Future()
            self.jobs.put((future, func, (query, page, page_size), {"number": number}))
            number += 1
            pending.append(future)
            return True

        try:
            while len(pending) < 2 * self.workers and submit():
                pass
            while pending:
                result = pending.popleft().result()
                submit()
                yield result
        finally:
            for future in pending:  # the reader stopped early: drop what has not started
                future.cancel()
