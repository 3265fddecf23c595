"""The Copper backend: every command through Copper's developer API, with requests.

The only module that imports requests. One Session carries Copper's four headers and keeps the
connection alive. Requests are paced under the rolling rate limit (Pacer), retried where that
is safe (HttpClient.call), and every failure becomes an OppcliError with the documented exit code.
Lookup tables are cached on disk (LookupCache) so a repeated search by names costs no lookups.
"""

from __future__ import annotations

import collections
import datetime as dt
import math
import os
import random
import sys
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

import orjson
import requests

from oppcli import fields as F
from oppcli.backends.base import describe_copper
from oppcli.backends.cache import LookupCache
from oppcli.errors import (
    ConfigError,
    ConflictError,
    NotFoundError,
    OppcliError,
    PartialFailure,
    ServiceError,
    UncertainWrite,
    ValidationError,
)
from oppcli.lookups import LABELS, Lookups, _norm
from oppcli.records import apply_changes, changed_fields, check_refs, refs_to_check

if TYPE_CHECKING:
    from pathlib import Path

    from oppcli.config import Settings
    from oppcli.query import Query

Record = dict[str, Any]
PAGE_SIZE = 200  # Copper's maximum
SEARCH_WINDOW = 100_000  # Copper serves only the first 100,000 matches of a search
CONNECT_TIMEOUT = 10.0
MAX_RETRY_AFTER = 300.0
MAX_BACKOFF = 60.0
MAX_BOOKING_AHEAD = 600.0
AUTH_HINT = ("check copper.api_key and copper.user_email (`oppcli config show`, "
             "`oppcli auth check`); a wrong copper.url path can also answer 401")
MAX_MESSAGE = 300  # characters of the server's own words shown in an error
FETCHED_KEEP = 256  # records a backend keeps from get() for the update/delete that follows


def _stderr(message: str) -> None:
    if not message.isprintable():  # Copper's text, shown literally
        from oppcli.output import literal

        message = literal(message)
    print(f"oppcli: {message}", file=sys.stderr)


# ---- pacing ----------------------------------------------------------------------------------
class Pacer:
    """Keeps requests under `limit` per rolling `window` seconds, in bursts of at most `burst`.

    Each request books a start time: no earlier than the limit-th previous start plus the
    window (the rolling limit itself), and no earlier than a token bucket refilled at
    limit/window allows (so a minute's allowance is not spent in the first second). Safe to
    share between threads.
    """

    def __init__(self, limit: int, window: float, burst: int = 10,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = max(1, int(limit))
        self.window = float(window)
        # A request reaches the server a little after we start it, and not always equally
        # late: keep a margin so the server never sees limit+1 requests in one window.
        self.margin = 0.05 + 0.01 * self.window
        self.rate = self.limit / (self.window + self.margin)
        self.burst = max(1, min(burst, self.limit))
        self.clock = clock
        self._starts: collections.deque[float] = collections.deque(maxlen=self.limit)
        self._tokens = float(self.burst)
        self._last = clock()
        self._lock = threading.Lock()
        self._paused_until = 0.0

    def reserve(self) -> float:
        """Book the next request; returns how long to wait before sending it."""
        with self._lock:
            return self._book()

    def pause(self, seconds: float) -> None:
        """Hold every request back (a 429 told us the server's window is full)."""
        with self._lock:
            self._paused_until = max(self._paused_until, self.clock() + seconds)

    def _book(self) -> float:
        now = self.clock()
        self._tokens = min(float(self.burst), self._tokens + max(0.0, now - self._last) * self.rate)
        self._last = now
        start = max(now, self._paused_until)
        if self._tokens < 1:
            start = max(start, now + (1 - self._tokens) / self.rate)
        if len(self._starts) == self.limit:
            start = max(start, self._starts[0] + self.window + self.margin)
        if self._starts:
            start = max(start, self._starts[-1])
        self._tokens -= 1
        self._starts.append(start)
        return start - now


def pacing_path(directory: Path, api_key: str, user_email: str) -> Path:
    """The file holding the shared allowance of one Copper account: named after the key's
    owner and a hash of the key (never the key itself), not after copper.url, since Copper
    counts requests per key whichever spelling of its address they were sent to (127.0.0.1
    and localhost, a trailing slash, an upper-case host would otherwise each get a minute's
    allowance of their own)."""
    import hashlib

    key_id = hashlib.sha256(api_key.encode()).hexdigest()
    ident = hashlib.sha256(f"{user_email.strip().casefold()}\n{key_id}".encode()).hexdigest()
    return directory / f"copper-pacing-{ident[:16]}.json"


class SharedPacer(Pacer):
    """A Pacer whose bookings live in a file (under an exclusive lock), so that every oppcli
    process using the same key shares one allowance: a shell loop of `oppcli update` calls,
    or parallel cron jobs, stay under the limit together. Wall-clock time, since the
    processes share no other clock. Falls back to pacing this process alone when the file
    cannot be used."""

    def __init__(self, path: Path, limit: int, window: float, burst: int = 10,
                 log: Callable[[str], None] | None = None) -> None:
        super().__init__(limit, window, burst, clock=time.time)
        self.path = path
        self.log = log or (lambda _message: None)
        self._shared = True

    def reserve(self) -> float:
        with self._lock:
            return self._shared_state(self._book)

    def pause(self, seconds: float) -> None:
        with self._lock:
            def later() -> float:
                self._paused_until = max(self._paused_until, self.clock() + seconds)
                return 0.0
            self._shared_state(later)

    def _shared_state(self, change: Callable[[], float]) -> float:
        if not self._shared:
            return change()
        import fcntl

        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            self._shared = False
            self.log(f"pacing this process alone: cannot use {self.path} ({exc.strerror})")
            return change()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._load(os.pread(fd, 1 << 20, 0))
            result = change()
            data = orjson.dumps({"starts": list(self._starts), "tokens": self._tokens,
                                 "last": self._last, "paused_until": self._paused_until})
            os.ftruncate(fd, 0)
            os.pwrite(fd, data, 0)
            return result
        except OSError as exc:
            self._shared = False
            self.log(f"pacing this process alone: cannot use {self.path} ({exc.strerror})")
            return change()
        finally:
            os.close(fd)

    def _load(self, raw: bytes) -> None:
        try:
            state = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            state = None
        if not isinstance(state, dict):
            return
        now = self.clock()
        starts = state.get("starts")
        if isinstance(starts, list) and all(isinstance(t, (int, float)) for t in starts):
            # Bookings are absolute times. Many waiting processes can book well ahead, so only
            # ones past any real wait (a clock set back) are dropped: ten minutes beyond the
            # window.
            self._starts.clear()
            self._starts.extend(t for t in starts[-self.limit:]
                                if t <= now + self.window + MAX_BOOKING_AHEAD)
        for attr, key in (("_tokens", "tokens"), ("_last", "last"), ("_paused_until", "paused_until")):
            value = state.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                setattr(self, attr, float(value))
        self._tokens = min(self._tokens, float(self.burst))
        self._last = min(self._last, now)
        self._paused_until = min(self._paused_until, now + 600)


# ---- HTTP -------------------------------------------------------------------------------------
class Answer:
    """A parsed response: status, JSON body (None when there is none), headers."""

    def __init__(self, status: int, body: Any, headers: Mapping[str, str]) -> None:
        self.status = status
        self.body = body
        self.headers = headers


class _Retry(Exception):
    """A failed attempt that may be retried: why, and the wait the server asked for."""

    def __init__(self, why: str, retry_after: float | None = None, *, sent: bool = True,
                 rate_limited: bool = False) -> None:
        super().__init__(why)
        self.why = why
        self.retry_after = retry_after
        self.sent = sent  # False when the request cannot have reached the server
        self.rate_limited = rate_limited  # a 429: refused, so never done


def error_message(resp: requests.Response) -> str:
    """The server's own words: `message`, then `error`, then the raw text. Never assumes JSON.

    Always one line: Copper joins several validation problems with line ends ("Invalid input:
    Validation errors: Name: can't be blank\\nPrimary contact: can't be blank"), shown here
    joined by "; "."""
    try:
        body = orjson.loads(resp.content)
    except orjson.JSONDecodeError:
        body = None
    if isinstance(body, dict):
        text = _body_message(body)
        if text:
            return text
    return one_line(resp.text or "") or (resp.reason or f"HTTP {resp.status_code}")


def _body_message(body: Mapping[str, Any]) -> str:
    """A JSON error body's `message`, else its `error`, as one line ("" when neither)."""
    for key in ("message", "error"):
        value = body.get(key)
        if isinstance(value, str) and value.strip():
            return one_line(value)
    return ""


def one_line(text: str) -> str:
    """Text from the server fit for a one-line error: its lines joined by "; ", runs of
    whitespace made one space, other control characters shown as escapes, cut at
    MAX_MESSAGE characters."""
    import unicodedata

    lines = (" ".join(line.split()) for line in text.splitlines())
    joined = "; ".join(line for line in lines if line)
    if not joined.isprintable():
        joined = "".join(repr(ch)[1:-1] if unicodedata.category(ch) in ("Cc", "Cf") else ch
                         for ch in joined)
    if len(joined) > MAX_MESSAGE:
        joined = joined[:MAX_MESSAGE] + "..."
    return joined


def _not_found(what: str, message: str) -> NotFoundError:
    """A 404, with the server's words when they add anything to "not found"."""
    said = message.replace("_", " ").strip(" .").casefold()
    detail = "" if said in ("", "not found", "resource not found") else f" ({message})"
    return NotFoundError(f"{what}: not found{detail}")


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value)
        if not math.isfinite(seconds):
            return None
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError, IndexError):
            return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


class HttpClient:
    """Copper's HTTP protocol: headers, pacing, retries, and errors mapped to exit codes."""

    def __init__(self, url: str, api_key: str, user_email: str, *, timeout: float = 30.0,
                 retries: int = 5, backoff: float = 1.0, pacer: Pacer | None = None,
                 debug: bool = False, session: requests.Session | None = None) -> None:
        self.base = url.rstrip("/")
        self.timeout = (min(CONNECT_TIMEOUT, timeout), timeout)
        self.retries = retries
        self.backoff = backoff
        self.pacer = pacer or Pacer(180, 60.0)
        self.debug = debug
        self.session = session or requests.Session()
        self.session.headers.update({
            "X-PW-AccessToken": api_key,
            "X-PW-Application": "developer_api",
            "X-PW-UserEmail": user_email,
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": f"oppcli/{_version()}",
        })
        self.requests_sent = 0
        self._secret = api_key
        self._count_lock = threading.Lock()
        self._local = threading.local()

    def _session(self) -> requests.Session:
        """The main thread's Session, or one per worker thread (a Session is not thread-safe);
        each keeps its own connection alive."""
        if threading.current_thread() is threading.main_thread():
            return self.session
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            session.headers.update(self.session.headers)
        return session

    def log(self, message: str) -> None:
        if self.debug:
            _stderr(f"debug: {self.redact(message)}")

    def redact(self, text: str) -> str:
        """Text with the API key (should any library ever echo it) replaced by ****."""
        return text.replace(self._secret, "****") if self._secret else text

    def _short(self, exc: BaseException) -> str:
        text = self.redact(str(exc))
        return text if len(text) < 200 else text[:200] + "..."

    def call(self, method: str, path: str, body: Any = None, *, idempotent: bool = True,
             what: str | None = None) -> Answer:
        """One API call, retried as the rules allow; raises OppcliError when it fails.

        Retried: 429 always (Copper refused the request); 5xx, timeouts, dropped connections
        and unreadable bodies only when `idempotent`. A create is not: retrying one that
        reached Copper could make the deal twice, so its uncertainty is reported instead.
        """
        url = self.base + path
        try:
            data = orjson.dumps(body) if body is not None else None
        except orjson.JSONEncodeError as exc:  # an integer past 64 bits, say
            raise ValidationError(f"{what}: a value cannot be sent to Copper ({exc})",
                                  "ids and numbers must fit in 64 bits") from None
        what = what or f"{method} {path}"
        attempt = 0
        while True:
            try:
                return self._attempt(method, url, data, what)
            except _Retry as exc:
                may_retry = idempotent or not exc.sent or exc.rate_limited
                if not may_retry:
                    raise UncertainWrite(
                        f"{what}: {exc.why}; Copper may or may not have done it, so it was not "
                        "retried", "check before trying again (a create could otherwise be "
                        "made twice)") from None
                if attempt >= self.retries:
                    tries = f"{attempt + 1} attempt{'s' if attempt else ''}"
                    if exc.rate_limited:
                        raise ServiceError(f"{what}: Copper kept rate-limiting (429) after {tries}",
                                           "wait a minute, or lower copper.rate_limit if other "
                                           "jobs share the key") from None
                    raise ServiceError(f"{what}: {exc.why} after {tries}",
                                       "Copper or the network is failing; try again later") from None
                delay = self._delay(attempt, exc.retry_after)
                if exc.rate_limited:
                    self.pacer.pause(delay)
                self.log(f"{what}: {exc.why}; retry {attempt + 1} of {self.retries} "
                         f"in {delay:.2f} s")
                time.sleep(delay)
                attempt += 1

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return retry_after + random.uniform(0, min(1.0, self.backoff))
        base = min(MAX_BACKOFF, self.backoff * (2 ** attempt))
        return random.uniform(base / 2, base)  # jitter: parallel clients do not retry in step

    def _attempt(self, method: str, url: str, data: bytes | None, what: str) -> Answer:
        wait = self.pacer.reserve()
        if wait > 0:
            if wait > 0.05:
                self.log(f"pacing: waiting {wait:.2f} s for the rate limit")
            time.sleep(wait)
        started = time.monotonic()
        with self._count_lock:
            self.requests_sent += 1
        try:
            # No redirects: requests would carry X-PW-AccessToken to wherever one points (it
            # strips only Authorization), and could turn https into plain http.
            resp = self._session().request(method, url, data=data, timeout=self.timeout,
                                        allow_redirects=False)
            resp.content  # noqa: B018 -- read the body here, so a cut-off body is caught below
        except requests.exceptions.ConnectTimeout:
            self.log(f"{method} {url} -> connect timeout")
            raise _Retry("timed out connecting to Copper", sent=False) from None
        except requests.exceptions.Timeout:
            self.log(f"{method} {url} -> timeout after {time.monotonic() - started:.3f} s")
            raise _Retry(f"no answer within {self.timeout[1]:g} s") from None
        except requests.exceptions.SSLError as exc:
            raise ConfigError(f"TLS failed for {url}: {self._short(exc)}",
                              "check copper.url; certificates are always verified") from None
        except requests.exceptions.ConnectionError as exc:
            self.log(f"{method} {url} -> connection error: {self._short(exc)}")
            refused = "refused" in str(exc).lower() or "NewConnectionError" in repr(exc)
            raise _Retry(f"connection failed ({self._short(exc)})", sent=not refused) from None
        except (requests.exceptions.ChunkedEncodingError,
                requests.exceptions.ContentDecodingError) as exc:
            self.log(f"{method} {url} -> answer cut off: {self._short(exc)}")
            raise _Retry(f"the answer was cut off ({self._short(exc)})") from None
        except (requests.exceptions.InvalidHeader, UnicodeError):
            raise ConfigError("the Copper API key or email holds characters an HTTP header "
                              "cannot carry", "check copper.api_key and copper.user_email for "
                              "line ends or pasted quotes") from None
        except requests.exceptions.RequestException as exc:
            raise ServiceError(f"{what}: {self._short(exc)}") from None
        elapsed = time.monotonic() - started
        status = resp.status_code
        self.log(f"{method} {url} -> {status} in {elapsed:.3f} s ({len(resp.content)} bytes)")
        if 300 <= status < 400:
            where = resp.headers.get("Location", "nowhere")
            raise ConfigError(f"Copper answered {status}, a redirect to {where}, which oppcli "
                              "does not follow (the key would go with it)",
                              "set copper.url to the API's real address")
        if status == 429:
            raise _Retry("429 rate limited", _retry_after(resp.headers.get("Retry-After")),
                         rate_limited=True)
        if status >= 500:
            raise _Retry(f"{status} {error_message(resp)}")
        if status in (401, 403):
            raise ConfigError(f"Copper refused the credentials ({status}: {error_message(resp)})",
                              AUTH_HINT)
        if status == 404:
            raise _not_found(what, error_message(resp))
        if status == 422:
            raise ConflictError(f"Copper rejected {what}: {error_message(resp)}",
                                "fix the value and try again")
        if status >= 400:
            raise ServiceError(f"{what}: Copper answered {status}: {error_message(resp)}")
        try:
            body = orjson.loads(resp.content) if resp.content else None
        except orjson.JSONDecodeError:
            kind = resp.headers.get("Content-Type", "no content type")
            raise _Retry(f"{status} with a body that is not JSON ({kind})") from None
        if isinstance(body, dict) and body.get("success") is False:
            # An error dressed as success: trust the body's own status.
            code = body.get("status")
            message = _body_message(body) or "no message"
            if code in (401, 403):
                raise ConfigError(f"Copper refused the credentials ({message})", AUTH_HINT)
            if code == 404:
                raise _not_found(what, message)
            if code == 422:
                raise ConflictError(f"Copper rejected {what}: {message}")
            raise _Retry(f"an error in a 200 answer ({message})")
        return Answer(status, body, resp.headers)


def _version() -> str:
    from oppcli import __version__

    return __version__


# ---- lookups ------------------------------------------------------------------------------------
class CopperLookups(Lookups):
    """Lookups fetched (or read from the cache) on first use.

    Companies and people are too many to fetch: names are searched in Copper when resolved.
    A name that the cached tables do not know refreshes them once before failing, so a stage
    added in Copper's app since the last fetch is found.
    """

    def __init__(self, backend: CopperBackend) -> None:  # noqa: D107 -- loaded lazily
        self._backend = backend
        self._refreshed = False
        self.tz = backend.tz

    def __getattr__(self, name: str) -> Any:
        if name in ("data", "stages", "_by_id"):
            tables, self._refreshed = self._backend.lookup_tables()
            Lookups.__init__(self, tables, self.tz)
            return self.__dict__[name]
        raise AttributeError(name)

    def _reload(self) -> bool:
        if self._refreshed:
            return False
        tables, _ = self._backend.lookup_tables(refresh=True)
        Lookups.__init__(self, tables, self.tz)
        self._refreshed = True
        return True

    def resolve(self, table: str, text: str | int, *, pipeline_ids: Any = ()) -> int:
        if table in ("companies", "people") and isinstance(text, str):
            raw = text.strip()
            if raw and not raw.lstrip("-").isdigit():
                rows = self._backend.find_named(table, raw)
                if not rows:
                    raise NotFoundError(f"no {LABELS[table]} named {raw!r} in Copper",
                                        "check the spelling, or give the id")
                return Lookups({table: rows}).resolve(table, raw)
        try:
            return super().resolve(table, text, pipeline_ids=pipeline_ids)
        except NotFoundError:
            if self._reload():
                return super().resolve(table, text, pipeline_ids=pipeline_ids)
            raise

    def has(self, table: str, ident: int) -> bool:
        """An id the cached tables lack refreshes them once: it may be new in Copper."""
        return super().has(table, ident) or (self._reload() and super().has(table, ident))

    def custom_field(self, text: str) -> dict[str, Any]:
        try:
            return super().custom_field(text)
        except NotFoundError:
            if self._reload():
                return super().custom_field(text)
            raise


# ---- the backend --------------------------------------------------------------------------------
class CopperBackend:
    name = "copper"
    # The order export streams in: Copper pages a date_modified-sorted search on the server.
    stream_order = ("date_modified", False)
    last_before: Record | None = None  # the record as it was before the last update

    def __init__(self, client: HttpClient, *, date_order: str = "MDY",
                 cache: LookupCache | None = None, refresh: bool = False,
                 notice: Callable[[str], None] = _stderr, window: int | None = None,
                 concurrency: int = 1, tz: dt.tzinfo = dt.UTC) -> None:
        self.client = client
        self.tz = tz  # copper.timezone: Date custom fields are midnights there
        self._zone_check: Any = None
        self.concurrency = max(1, int(concurrency))
        self._pool: _PagePool | None = None
        self._date_order = date_order
        self.cache = cache
        self.refresh = refresh
        self.notice = notice
        self.window = window or SEARCH_WINDOW
        # What the last search found about itself (complete? repeats?): sync pull reads it.
        self.last_search = SearchReport()
        self._lookups: CopperLookups | None = None
        # Records fetched by this command, so an update or delete that the command prepared
        # with a GET (to read the record's pipeline, or check it exists) does not fetch it a
        # second time. Taken out when used; at most FETCHED_KEEP (the oldest go first), so an
        # import or dry run that reads thousands of deals does not keep them all.
        self._fetched: dict[int, Record] = {}

    @classmethod
    def from_settings(cls, settings: Settings, *, debug: bool = False,
                      refresh: bool = False) -> CopperBackend:
        from oppcli.config import check_url

        values = settings.values
        url = str(values["copper.url"])
        try:
            check_url(url)
        except ValidationError as exc:
            raise ConfigError(f"{exc.message} (from {settings.source('copper.url')})",
                              exc.hint) from None
        key = str(values.get("copper.api_key") or "").strip()
        email = str(values.get("copper.user_email") or "").strip()
        if not key:
            raise ConfigError("no Copper API key", "set COPPER_API_KEY, or run "
                              "`oppcli config set copper.api_key KEY` (kept 0600)")
        if not email:
            raise ConfigError("no email for the Copper API key", "set COPPER_USER_EMAIL, or "
                              "run `oppcli config set copper.user_email you@example.com`")
        for name, text in (("copper.api_key", key), ("copper.user_email", email)):
            if not _header_safe(text):  # never echo it: it may be the key
                raise ConfigError(f"{name} (from {settings.source(name)}) holds characters an "
                                  "HTTP header cannot carry (a line end, a pasted quote?)",
                                  "set it again without them")
        cache = LookupCache.for_settings(settings)
        pacer = SharedPacer(pacing_path(cache.path.parent, key, email),
                            settings.number("copper.rate_limit"),
                            settings.number("copper.rate_window"),
                            log=lambda m: _stderr(f"debug: {m}") if debug else None)
        client = HttpClient(url, key, email, timeout=settings.number("copper.timeout"),
                            retries=settings.number("copper.retries"),
                            backoff=settings.number("copper.backoff"), pacer=pacer, debug=debug)
        return cls(client, date_order=settings.date_order, cache=cache, refresh=refresh,
                   concurrency=settings.number("copper.concurrency"), tz=settings.timezone)

    def describe(self) -> str:
        """The account: one URL serves every Copper account, so the user names it."""
        return describe_copper(self.client.base, str(self.client.session.headers.get(
            "X-PW-UserEmail")))

    def check_writable(self) -> None:
        """Copper accepts writes (its own permissions apply)."""

    def date_order(self) -> str:
        return self._date_order

    # ---- lookups ----------------------------------------------------------------------------
    def lookups(self) -> Lookups:
        if self._lookups is None:
            self._lookups = CopperLookups(self)
        return self._lookups

    def lookup_tables(self, *, refresh: bool = False) -> tuple[dict[str, Any], bool]:
        """(tables, fetched now): from the cache when fresh, else from Copper (then cached)."""
        if self.cache is not None and not (refresh or self.refresh):
            tables = self.cache.load()
            if tables is not None:
                self.client.log(f"lookups from the cache {self.cache.path}")
                return tables, False
        tables = self.fetch_lookups()
        if self.cache is not None:
            self.cache.save(tables)
        self.refresh = False
        return tables, True

    def fetch_lookups(self) -> dict[str, Any]:
        c = self.client
        tables: dict[str, Any] = {
            "pipelines": _rows(c.call("GET", "/pipelines").body),
            "users": list(self._paged("/users/search", {})),
            "customer_sources": _rows(c.call("GET", "/customer_sources").body),
            "loss_reasons": _rows(c.call("GET", "/loss_reasons").body),
            "custom_field_definitions": _rows(c.call("GET", "/custom_field_definitions").body),
            "companies": [], "people": [],
        }
        from oppcli.lookups import lookups_problem

        problem = lookups_problem(tables)
        if problem:
            raise ServiceError(f"Copper's lookup tables are not as expected: {problem}")
        return tables

    def find_named(self, table: str, text: str) -> list[dict[str, Any]]:
        """Companies or people Copper finds for a name (or, for people, an email)."""
        if table == "people" and "@" in text:
            try:
                person = self.client.call("POST", "/people/fetch_by_email", {"email": text}).body
            except NotFoundError:
                return []
            return [_person(person)] if isinstance(person, dict) else []
        rows = self.client.call("POST", f"/{table}/search",
                                {"name": text, "page_size": PAGE_SIZE, "page_number": 1}).body
        rows = [r for r in _rows(rows) if isinstance(r.get("id"), int)]
        if table == "people":
            rows = [_person(r) for r in rows]
        exact = [r for r in rows if _norm(str(r.get("name", ""))) == _norm(text)]
        return exact or rows

    def _paged(self, path: str, body: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
        page = 1
        while True:
            rows = _rows(self.client.call("POST", path, {**body, "page_size": PAGE_SIZE,
                                                         "page_number": page}).body)
            yield from rows
            if len(rows) < PAGE_SIZE:
                return
            page += 1

    def whoami(self) -> dict[str, Any]:
        try:
            body = self.client.call("GET", "/users/me", what="GET /users/me").body
        except NotFoundError as exc:
            # Every account has /users/me: a 404 means copper.url does not lead to the API.
            raise NotFoundError(exc.message, f"is copper.url right? it is {_shown_url(self.client.base)}"
                                " (Copper's is https://api.copper.com/developer_api/v1)") from None
        if not isinstance(body, dict):
            raise ServiceError("GET /users/me did not answer with a user object")
        return body

    # ---- records ----------------------------------------------------------------------------
    def _record(self, body: Any, what: str) -> Record:
        if not isinstance(body, dict) or not isinstance(body.get("id"), int):
            raise ServiceError(f"{what}: Copper's answer is not an opportunity")
        return normalise(body)

    def _zone_seen(self, records: Iterable[Record]) -> Iterator[Record]:
        """Records as they come, each shown to the time-zone check (a warning, once, when the
        Date custom fields are midnights in another zone than copper.timezone)."""
        from oppcli.records import ZoneCheck

        for record in records:
            check = self._zone_check
            if check is None:
                # Only when the lookups are loaded anyway (dates shown as days, names): JSON
                # output needs none, and is not made to fetch them for this.
                loaded = self._lookups is not None and "data" in self._lookups.__dict__
                if not loaded:
                    yield record
                    continue
                check = self._zone_check = ZoneCheck(self.lookups())
            if not check.said and check.seen < check.LOOK_AT:
                message = check.look(record)
                if message:
                    self.notice(f"warning: {message}")
            yield record

    def get(self, opp_id: int) -> Record:
        try:
            body = self.client.call("GET", f"/opportunities/{opp_id}",
                                    what=f"GET opportunity {opp_id}").body
        except NotFoundError:
            raise NotFoundError(f"no opportunity with id {opp_id}",
                                "`oppcli list` or `oppcli search` shows the ids") from None
        record = self._record(body, f"GET opportunity {opp_id}")
        self._fetched.pop(opp_id, None)  # (re-inserted: the newest)
        self._fetched[opp_id] = record
        while len(self._fetched) > FETCHED_KEEP:
            del self._fetched[next(iter(self._fetched))]
        return record

    def create(self, payload: Mapping[str, Any]) -> Record:
        from oppcli.models import check_create

        check_create(payload)
        # Left out rather than null: Copper fills its defaults (and may refuse a null).
        body = {k: v for k, v in payload.items() if k not in F.READ_ONLY and v is not None}
        check_refs(body, self.lookups())  # exit 4 like the local store, not Copper's 422
        answer = self.client.call("POST", "/opportunities", body, idempotent=False,
                                  what="create opportunity")
        return self._record(answer.body, "create opportunity")

    def update(self, opp_id: int, changes: Mapping[str, Any],
               current: Record | None = None) -> Record:
        fetched = self._fetched.pop(opp_id, None)  # used now (or superseded by `current`)
        if current is None:
            current = fetched if fetched is not None else self.get(opp_id)
            self._fetched.pop(opp_id, None)
        self.last_before = current
        lookups = self.lookups()
        new = apply_changes(current, changes, lookups)
        body = changed_fields(current, new)
        if not body:  # nothing changes: nothing is sent
            return current
        check_refs(refs_to_check(body, new), lookups)  # only what is sent
        try:
            answer = self.client.call("PUT", f"/opportunities/{opp_id}", body,
                                      what=f"update opportunity {opp_id}")
        except NotFoundError:
            raise NotFoundError(f"no opportunity with id {opp_id} (deleted meanwhile?)") from None
        return self._record(answer.body, f"update opportunity {opp_id}")

    def delete(self, ids: list[int]) -> list[Record]:
        done: list[Record] = []
        todo = list(dict.fromkeys(ids))
        for n, opp_id in enumerate(todo):
            try:
                before = self._fetched.pop(opp_id, None)
                if before is None:  # not fetched, or one of more than FETCHED_KEEP: read it now
                    before = self._before_delete(opp_id)
                self._delete_one(opp_id)
            except OppcliError as exc:
                if not done:
                    raise
                left = ", ".join(map(str, todo[n:]))
                raise PartialFailure(
                    f"deleted {', '.join(str(r['id']) for r in done)}, then failed on {opp_id} "
                    f"({exc}); not deleted: {left}", "run the delete again for those",
                    done=done) from None
            # The record as the command fetched it before deleting (for the audit log).
            done.append(before or {"id": opp_id})
        return done

    def _before_delete(self, opp_id: int) -> Record | None:
        """The record about to be deleted, for the audit log (None when it is gone already)."""
        try:
            record = self.get(opp_id)
        except NotFoundError:
            return None
        self._fetched.pop(opp_id, None)
        return record

    def _delete_one(self, opp_id: int) -> None:
        what = f"delete opportunity {opp_id}"
        try:
            self.client.call("DELETE", f"/opportunities/{opp_id}", what=what)
        except NotFoundError:
            # Gone: either never there (the command checked it was) or deleted by an attempt
            # whose answer was lost and that was then retried. Both mean it is deleted.
            self.client.log(f"{what}: 404, already deleted")

    # ---- search -----------------------------------------------------------------------------
    def search(self, query: Query) -> Iterator[Record]:
        """Pages of Copper's search, with criteria Copper lacks applied here.

        Stops as soon as `query.limit` records are found. A search past Copper's window of
        100,000 results continues in date_modified windows when sorted by date_modified, and
        warns otherwise.
        """
        from oppcli.query import order

        if query.limit == 0:
            return
        server, client = query.split_for_copper()
        check = client.compile(self._date_order) if client.has_filters() else None
        if query.sort_by not in F.COPPER_SORT:  # sorted here, so every match is fetched first
            key = query.sort_value(self._date_order)
            hits = [(key(r), int(r["id"]), r)
                    for r in self._zone_seen(self._windows(server, PAGE_SIZE, None))
                    if check is None or check(r)]
            yield from (r for _, _, r in order(hits, query.descending)[:query.limit])
            return
        # Missing values sort last either way, by id, as on the local store (query.order). Copper
        # puts deals without a value first when ascending: those are held back and given after
        # every deal with one. (Full pages then: the held ones may fill the first pages.)
        value_of = query.sort_value(self._date_order) if F.BY_NAME[query.sort_by].nullable else None
        held: list[Record] = []
        page_size = PAGE_SIZE
        if check is None and value_of is None and query.limit is not None:
            page_size = max(1, min(PAGE_SIZE, query.limit))
        found = 0
        for record in self._zone_seen(self._windows(server, page_size,
                                                    query.limit if check is None else None)):
            if check is not None and not check(record):
                continue
            if value_of is not None and value_of(record) is None:
                held.append(record)
                continue
            yield record
            found += 1
            if query.limit is not None and found >= query.limit:
                return
        held.sort(key=lambda r: int(r["id"]), reverse=query.descending)
        yield from held[:None if query.limit is None else query.limit - found]

    def _windows(self, query: Query, page_size: int, want: int | None) -> Iterator[Record]:
        """Every record of the search, in order, each id once.

        A deal edited during the search moves to the end of the date_modified order and Copper
        serves it again, newer: the stream cannot take back the version already given, so the
        later one is left out (and noted in last_search, so an incremental pull re-reads it;
        an export's state never passes the time the export began, so its next run does).
        """
        report = self.last_search = SearchReport()
        given = _GivenIds()
        for record in self._fetch(query, page_size, want):
            rid = record.get("id")
            if rid in given:
                report.repeated(record)
                continue
            given.add(rid)
            yield record

    def _gap(self, message: str) -> None:
        """Say on stderr why this search is not provably complete, and remember it."""
        self.last_search.complete = False
        self.last_search.problems.append(message)
        self.notice(f"warning: {message}")

    def _fetch(self, query: Query, page_size: int, want: int | None) -> Iterator[Record]:
        """Every record of the search, in order.

        Sorted by date_modified (the default, and what export and sync use), every page is a
        new search starting at the last modification time seen (inclusive), skipping the
        records already given at exactly that time. So a deal edited during the run (it moves
        to the end of the order) cannot shift an unread one out of reach, as page numbers
        would; and Copper's window of 100,000 results never binds. A page whose records all
        share one time is a tie that may be longer than a page: _tie reads that second whole.
        Any other sort pages by number and can only warn past the window.
        """
        if query.sort_by != "date_modified":
            for page, rows, total in self._pages(query, page_size):
                if page == 1 and total is not None and total > self.window \
                        and (want is None or want > self.window):
                    self._warn_window(total, query)
                yield from (normalise(r) for r in rows)
            return
        cursor = _Cursor()
        if want is None and not query.descending and self.concurrency > 1:
            yield from self._concurrent(query, page_size, cursor)
            if cursor.done:
                return
        yield from self._keyset(query, page_size, cursor)

    def _keyset(self, query: Query, page_size: int, cursor: _Cursor) -> Iterator[Record]:
        """The rest of a date_modified-sorted search, one page at a time, from the cursor."""
        while True:
            bounded = cursor.after(query)
            cursor.fetched += 1
            rows, total = self._page(bounded, 1, page_size, number=cursor.fetched)
            last = rows[-1].get("date_modified") if rows else None
            if len(rows) == page_size and isinstance(last, int) \
                    and rows[0].get("date_modified") == last:
                # The whole page shares one time: that second may hold more than a page. (The
                # page is the first of that second's own search: nothing comes before it.)
                yield from self._tie(query, last, page_size, cursor, (rows, total))
                continue
            yield from cursor.take(rows)
            if len(rows) < page_size:
                cursor.advance(rows)  # a caller may go on from here
                return
            if not isinstance(last, int):
                yield from self._undated_rest(bounded, 2, page_size)
                return
            cursor.advance(rows)

    def _tie(self, query: Query, stamp: int, page_size: int, cursor: _Cursor,
             first: tuple[list[Record], int | None]) -> Iterator[Record]:
        """Every record modified at exactly `stamp` (a second holding a page or more), each
        once, then the cursor past that second.

        Copper does not promise an order among records sharing a time, and may serve them in
        another on each request: pages by number can then repeat some and never show others.
        So the second is read as its own search (minimum = maximum = stamp), pass after pass,
        until its records seen since its size last changed number its size: the size is
        exact from the first short page (X-PW-TOTAL is only an upper bound; a full page
        reaching it also ends a pass). Reads that keep adding nothing new end in a
        ServiceError naming the problem, as does a second holding more than Copper's window:
        never a quiet gap.
        """
        from dataclasses import replace

        tied = replace(query, modified_min=stamp, modified_max=stamp)
        given = cursor.seen if cursor.boundary == stamp else set()
        observed: set[Any] = set()  # ids read since the second's size last changed
        size: int | None = None
        idle = reads = changes = 0
        pending: tuple[list[Record], int | None] | None = first
        while True:
            page, count = 1, None
            while count is None:
                if pending is not None:
                    (rows, total), pending = pending, None
                else:
                    if (page - 1) * page_size >= self.window:
                        raise ServiceError(
                            f"more than {self.window:,} opportunities share the modification "
                            f"time {stamp}; Copper cannot page past them, so the search cannot "
                            "be complete", "narrow the search (a filter) so fewer match")
                    cursor.fetched += 1
                    rows, total = self._page(tied, page, page_size, number=cursor.fetched)
                reads += 1
                fresh = False
                for r in rows:
                    if r.get("date_modified") != stamp:
                        continue
                    rid = r.get("id")
                    if rid not in observed:
                        observed.add(rid)
                        fresh = True
                    if rid not in given:
                        given.add(rid)
                        yield normalise(r)
                idle = 0 if fresh else idle + 1
                if len(rows) < page_size:
                    count = (page - 1) * page_size + len(rows)
                elif total is not None and page * page_size >= total:
                    count = page * page_size  # the bound is reached: no more can exist
                else:
                    page += 1
            if size is not None and count != size:  # deals left (or joined) the second
                changes += 1
                observed.clear()
                idle = 0
            size = count
            if len(observed) >= size:
                break
            if idle >= _patience(size, page_size) or changes > 10:
                raise ServiceError(
                    f"{size:,} opportunities share the modification time {stamp} and Copper "
                    f"served them in a different order on each request: after {reads} reads, "
                    f"{len(observed):,} of them were seen, so the search cannot be complete",
                    "try again later, or narrow the search (a filter) so fewer match")
        cursor.boundary, cursor.seen, cursor.closed = stamp, given, True

    def _concurrent(self, query: Query, page_size: int, cursor: _Cursor) -> Iterator[Record]:
        """The bulk of a long ascending date_modified search, several pages in flight at once
        (latency, not the rate limit, bounds one page at a time), in order, leaving the cursor
        for _keyset to finish with.

        Keyset pages cannot be requested ahead (each starts where the last ended), so this
        pages a frozen slice by number: every record modified before the newest modification
        time Copper reports, less a minute of margin. Edits and deletes can only take records
        out of that slice, and each answer's X-PW-TOTAL says whether one did: pages are used in
        order only while every total matches the slice's first. At the first that does not,
        or a page that is short, the remaining pages are dropped and _keyset goes on from the
        last record used, so nothing is skipped. Copper's tie order is not documented: a page
        that repeats an id (ties reordered between requests, so one may be missing at that
        time too) is dropped the same way, and _keyset, re-reading from that time, finds it,
        still in order.
        """
        from dataclasses import replace

        cursor.fetched += 1
        rows, total = self._page(query, 1, page_size, number=cursor.fetched)
        yield from cursor.take(rows)
        if len(rows) == page_size and not isinstance(rows[-1].get("date_modified"), int):
            yield from self._undated_rest(query, 2, page_size)
            cursor.done = True
            return
        if len(rows) < page_size or total is None or total <= 2 * page_size:
            cursor.advance(rows)
            if len(rows) < page_size:
                cursor.done = True
            return
        cursor.advance(rows)
        newest = self._newest(query)
        if newest is None:
            return
        ceiling = newest - FROZEN_MARGIN
        while cursor.boundary is not None and cursor.boundary <= ceiling:
            started_at = cursor.boundary
            frozen = replace(query, modified_min=cursor.boundary, modified_max=ceiling)
            cursor.fetched += 1
            rows, total = self._page(frozen, 1, page_size, number=cursor.fetched)
            given: set[Any] = set()  # the ids this slice gave
            for row in cursor.take(rows):
                given.add(row.get("id"))
                yield row
            if total is None or len(rows) < page_size:
                cursor.advance(rows)
                return
            cursor.advance(rows)
            count = min(total, self.window)
            pages = -(-count // page_size)
            complete = True  # every page used; False: the rest is left to _keyset
            ahead = self._pool_for().ordered(self._page, frozen, range(2, pages + 1), page_size,
                                             first_number=cursor.fetched + 1)
            try:
                for number, (got, got_total) in enumerate(ahead, start=2):
                    cursor.fetched += 1
                    expected = page_size if number < pages else count - (pages - 1) * page_size
                    taken = list(cursor.take(got))
                    ids = [row.get("id") for row in taken]
                    if (got_total != total or len(got) != expected or len(taken) < len(got)
                            or not given.isdisjoint(ids)):
                        # A record left the slice, or one came again (ties served in
                        # another order, so one may also be missing, at the same time): this
                        # page is not used; _keyset goes on from the last record given, in
                        # order, and finds it.
                        complete = False
                        break
                    given.update(ids)
                    yield from taken
                    cursor.advance(got)
            finally:
                ahead.close()  # pages not yet started are dropped now, not at collection
            if not complete or total <= self.window or cursor.boundary == started_at:
                return  # (the last: a whole window at one time; _keyset pages past it)

    def _newest(self, query: Query) -> int | None:
        """The newest date_modified among the search's matches (one small request)."""
        from dataclasses import replace

        rows, _ = self._page(replace(query, descending=True), 1, 1, number=None,
                             what="search (newest modification)")
        last = rows[0].get("date_modified") if rows else None
        return last if isinstance(last, int) else None

    def _pool_for(self) -> _PagePool:
        if self._pool is None:
            self._pool = _PagePool(self.concurrency)
        return self._pool

    def _undated_rest(self, query: Query, page: int, page_size: int) -> Iterator[Record]:
        """After a page ending in a record without date_modified: no keyset to go on from.
        Paged by number, an edit or delete meanwhile can shift a record out of reach, so the
        search is not provably complete."""
        self._gap("a record without date_modified: the rest of the search is fetched by page "
                  "number, which an edit or delete meanwhile can make skip a record")
        yield from self._rest_by_number(query, page, page_size)

    def _rest_by_number(self, query: Query, page: int, page_size: int) -> Iterator[Record]:
        for _page, rows, _total in self._pages(query, page_size, first=page):
            yield from (normalise(r) for r in rows)

    def _warn_window(self, total: int, query: Query) -> None:
        self._gap(f"{total:,} opportunities match and Copper returns only the first "
                  f"{self.window:,} of a search sorted by {query.sort_by}; sort by "
                  "date_modified (the default) to get them all, or narrow the search")

    def _pages(self, query: Query, page_size: int, first: int = 1,
               ) -> Iterator[tuple[int, list[Record], int | None]]:
        page = first
        while True:
            if (page - 1) * page_size >= self.window:
                self.last_search.complete = False  # (warned about by the caller)
                return
            rows, total = self._page(query, page, page_size)
            yield page, rows, total
            if len(rows) < page_size:
                return
            page += 1

    def _page(self, query: Query, page: int, page_size: int, number: int | None = None,
              what: str | None = None) -> tuple[list[Record], int | None]:
        answer = self.client.call("POST", "/opportunities/search",
                                  query.to_copper_body(page, page_size),
                                  what=what or f"search (page {number or page})")
        rows = answer.body
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise ServiceError(f"search page {page}: Copper's answer is not a list of "
                               "opportunities")
        return rows, _int_header(answer.headers.get("X-PW-TOTAL"))


def normalise(record: Mapping[str, Any]) -> Record:
    """Copper's record with every field present (null when Copper left it out), in field order."""
    out: Record = dict.fromkeys(F.FIELD_NAMES)
    out.update(record)
    return out


def _shown_url(url: str) -> str:
    """The URL without any user:password@ it may hold, to show in a message."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def _header_safe(text: str) -> bool:
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return not any(ch in text for ch in "\r\n\0")


def _rows(body: Any) -> list[dict[str, Any]]:
    if not isinstance(body, list):
        raise ServiceError("Copper answered a list request with something else")
    return [r for r in body if isinstance(r, dict)]


def _person(row: Mapping[str, Any]) -> dict[str, Any]:
    """A Copper person as the lookup tables hold people: id, name, email, company_id."""
    emails = row.get("emails") or []
    email = next((e.get("email") for e in emails if isinstance(e, dict) and e.get("email")), None)
    return {"id": row.get("id"), "name": row.get("name") or "", "email": email or row.get("email"),
            "company_id": row.get("company_id")}


def _int_header(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


FROZEN_MARGIN = 60  # seconds below the newest modification time that no edit can still reach
TIE_MISS_ODDS = 1e-6  # how unlikely a tie's record still unseen after _patience idle reads is


def _patience(size: int, page_size: int) -> int:
    """Reads in a row that add nothing new before a tie of `size` records is given up: enough
    that a record still unseen would have shown up with odds 1 - TIE_MISS_ODDS, had each page
    been a fresh random draw of the tie."""
    if size <= page_size:
        return 10
    return max(10, math.ceil(math.log(TIE_MISS_ODDS) / math.log(1 - page_size / size)))


class _GivenIds:
    """The ids a search has given, to tell a repeat: the latest in a set, older ones merged
    into a sorted array of 8-byte ints (a million ids in about 8 MB, where a set of them takes
    about 70), so a long export's memory stays small."""

    FLUSH = 1 << 16

    def __init__(self) -> None:
        from array import array

        self._recent: set[int] = set()
        self._old = array("q")
        self._other: set[Any] = set()  # ids that are not 64-bit ints, as they are

    def __contains__(self, ident: Any) -> bool:
        if ident in self._recent or ident in self._other:
            return True
        if _int64(ident) and self._old:
            from bisect import bisect_left

            i = bisect_left(self._old, ident)
            return i < len(self._old) and self._old[i] == ident
        return False

    def add(self, ident: Any) -> None:
        if not _int64(ident):
            self._other.add(ident)
            return
        self._recent.add(ident)
        if len(self._recent) >= self.FLUSH:
            import heapq
            from array import array

            self._old = array("q", heapq.merge(self._old, sorted(self._recent)))
            self._recent.clear()


def _int64(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and -(1 << 63) <= value < 1 << 63


class SearchReport:
    """What a search found about itself: whether its pass was provably complete (a paging
    method that an edit or delete meanwhile can make skip a record, or a window that cut it,
    makes it not), and the lowest date_modified among newer versions left out as repeats."""

    def __init__(self) -> None:
        self.complete = True
        self.problems: list[str] = []
        self.repeats = 0
        self.earliest_repeat: int | None = None

    def repeated(self, record: Mapping[str, Any]) -> None:
        self.repeats += 1
        stamp = record.get("date_modified")
        if isinstance(stamp, int) and not isinstance(stamp, bool) and (
                self.earliest_repeat is None or stamp < self.earliest_repeat):
            self.earliest_repeat = stamp


class _Cursor:
    """Where a date_modified-sorted search has got to: the last modification time given
    (`boundary`) and the ids already given at exactly that time (`seen`); `closed` when
    every record at that time was given (the next search starts past it)."""

    def __init__(self, boundary: int | None = None, seen: set[Any] | None = None,
                 fetched: int = 0) -> None:
        self.boundary = boundary
        self.seen: set[Any] = seen if seen is not None else set()
        self.fetched = fetched  # pages fetched so far, for messages
        self.done = False
        self.closed = False

    def after(self, query: Query) -> Query:
        """The search for what comes from the cursor on, in the query's direction."""
        from dataclasses import replace

        b = self.boundary
        if b is None:
            return query
        if query.descending:
            return replace(query, modified_max=b - 1 if self.closed else b)
        return replace(query, modified_min=b + 1 if self.closed else b)

    def take(self, rows: list[dict[str, Any]]) -> Iterator[Record]:
        """The page's records not given yet, normalised."""
        for r in rows:
            if self.boundary is not None and r.get("date_modified") == self.boundary \
                    and r.get("id") in self.seen:
                continue
            yield normalise(r)

    def advance(self, rows: list[dict[str, Any]]) -> None:
        """Move past a page that was given (ascending order)."""
        if not rows:
            return
        last = rows[-1].get("date_modified")
        if not isinstance(last, int):
            return
        at_last = {r.get("id") for r in rows if r.get("date_modified") == last}
        if last == self.boundary:
            self.seen |= at_last
        else:
            self.boundary, self.seen, self.closed = last, at_last, False


class _PagePool:
    """A few daemon threads that fetch pages; results come back in the order asked for.

    Daemon threads, so an interrupted export exits at once instead of waiting for answers
    nobody will read. At most 2 x workers pages are held ahead of the reader.
    """

    def __init__(self, workers: int) -> None:
        import queue

        self.workers = workers
        self.jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
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

    def ordered(self, func: Callable[..., Any], query: Query, pages: Iterable[int],
                page_size: int, first_number: int) -> Generator[Any, None, None]:
        from concurrent.futures import Future

        pending: collections.deque[Future[Any]] = collections.deque()
        todo = iter(pages)
        number = first_number

        def submit() -> bool:
            nonlocal number
            page = next(todo, None)
            if page is None:
                return False
            future: Future[Any] = Future()
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
