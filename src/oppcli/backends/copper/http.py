"""Copper's HTTP protocol, with requests (the only module of oppcli that imports it).

One Session carries Copper's four headers and keeps the connection alive. Requests are paced
under the rolling rate limit (pacing.Pacer), retried where that is safe (HttpClient.call), and
every failure becomes an OppcliError with the documented exit code: the server's own words
made one line (error_message, one_line), never the API key (HttpClient.redact).
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime
from typing import Any

import orjson
import requests

from oppcli.backends.copper.pacing import Pacer
from oppcli.errors import (
    ConfigError,
    ConflictError,
    NotFoundError,
    ServiceError,
    UncertainWrite,
    UsageError,
    ValidationError,
)
from oppcli.io import notice

CONNECT_TIMEOUT = 10.0
MAX_RETRY_AFTER = 300.0
MAX_BACKOFF = 60.0
AUTH_HINT = ("check copper.api_key and copper.user_email (`oppcli config show`, "
             "`oppcli auth check`); a wrong copper.url path can also answer 401")
MAX_MESSAGE = 300  # characters of the server's own words shown in an error
# Receives each answer's status line ("HTTP/1.1 200 OK") and headers, as they arrive (oppcli
# api --include); an attempt that is then retried is heard too.
Heard = Callable[[str, Mapping[str, str]], None]


# Where the backend's debug lines and warnings go when no one says otherwise (Copper's text
# shown literally).
_stderr = notice


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
                 debug: bool = False, session: requests.Session | None = None,
                 notice: Callable[[str], None] | None = None) -> None:
        self.base = url.rstrip("/")
        self.timeout = (min(CONNECT_TIMEOUT, timeout), timeout)
        self.retries = retries
        self.backoff = backoff
        self.pacer = pacer or Pacer(180, 60.0)
        self.debug = debug
        self.notice = notice or _stderr  # receives the debug lines
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
            self.notice(f"debug: {self.redact(message)}")

    def redact(self, text: str) -> str:
        """Text with the API key (should any library ever echo it) replaced by ****."""
        return text.replace(self._secret, "****") if self._secret else text

    def _short(self, exc: BaseException) -> str:
        text = self.redact(str(exc))
        return text if len(text) < 200 else text[:200] + "..."

    def call(self, method: str, path: str, body: Any = None, *, idempotent: bool = True,
             what: str | None = None, raw: bool = False, heard: Heard | None = None) -> Answer:
        """One API call, retried as the rules allow; raises OppcliError when it fails.

        Retried: 429 always (Copper refused the request); 5xx, timeouts, dropped connections
        and unreadable bodies only when `idempotent`. A create is not: retrying one that
        reached Copper could make the deal twice, so its uncertainty is reported instead.

        `body` as bytes is sent as it is. `raw` (oppcli api): a 2xx answer's body is returned
        as its bytes, JSON or not, and a 4xx other than those below is the request's fault
        (UsageError; 409 ConflictError) rather than Copper's. `heard`: see Heard.
        """
        url = self.base + path
        try:
            data = body if isinstance(body, bytes) else orjson.dumps(body) if body is not None \
                else None
        except orjson.JSONEncodeError as exc:  # an integer past 64 bits, say
            raise ValidationError(f"{what}: a value cannot be sent to Copper ({exc})",
                                  "ids and numbers must fit in 64 bits") from None
        what = what or f"{method} {path}"
        attempt = 0
        while True:
            try:
                return self._attempt(method, url, data, what, raw, heard)
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

    def _attempt(self, method: str, url: str, data: bytes | None, what: str, raw: bool = False,
                 heard: Heard | None = None) -> Answer:
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
        if heard is not None:
            version = getattr(resp.raw, "version", 11)
            heard(f"HTTP/{version // 10}.{version % 10} {status} {resp.reason or ''}".rstrip(),
                  resp.headers)
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
                              AUTH_HINT + ("; Copper answers 401 to some unknown paths too"
                                           if raw and status == 401 else ""))
        if status == 404:
            raise _not_found(what, error_message(resp))
        if status == 422 or (raw and status == 409):
            raise ConflictError(f"Copper rejected {what}: {error_message(resp)}",
                                "fix the value and try again")
        if status >= 400:
            if raw:
                raise UsageError(f"{what}: Copper answered {status}: {error_message(resp)}",
                                 "check the method, the path and the body")
            raise ServiceError(f"{what}: Copper answered {status}: {error_message(resp)}")
        if raw:
            return Answer(status, resp.content, resp.headers)
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


def _header_safe(text: str) -> bool:
    """Whether text can go in an HTTP header as it is (latin-1, no line end or NUL)."""
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return not any(ch in text for ch in "\r\n\0")


def _int_header(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
