"""Raw Copper requests (`oppcli api`, Session.api): for what oppcli has no command for.

A request goes with the profile's credentials, under the same pacing as every other request,
and is retried as reads are when that is safe: GET, and POST to a search endpoint (a path
ending in /search). Anything else (POST, PUT, PATCH, DELETE) is sent once: a second attempt
after a lost answer could do it twice. Nothing here is audited: these requests are outside
oppcli's model of a deal, so `oppcli undo` cannot take them back.

The HTTP status decides the error (exit code), as for every Copper request (http.py), except
that a 4xx other than 401/403/404/409/422/429 is the request's own fault: exit 2.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from oppcli.errors import ServiceError, UsageError

if TYPE_CHECKING:
    from oppcli.backends.copper.http import Heard, HttpClient
    from oppcli.config import Settings

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
PAGE_SIZE = 200  # Copper's largest page
SEARCH_WINDOW = 100_000  # Copper serves only the first 100,000 matches of a search


@dataclass(frozen=True)
class ApiResponse:
    """A successful (2xx) answer: its status, headers and body bytes (JSON or not)."""

    status: int
    headers: Mapping[str, str]
    content: bytes

    def json(self) -> Any:
        """The body parsed as JSON (None when it is empty); ServiceError when it is not JSON."""
        if not self.content.strip():
            return None
        try:
            return orjson.loads(self.content)
        except orjson.JSONDecodeError:
            kind = self.headers.get("Content-Type", "no content type")
            raise ServiceError(f"Copper's answer is not JSON ({kind})") from None


def check_method(method: str) -> str:
    """The method in capitals; UsageError unless it is one of METHODS."""
    name = method.strip().upper()
    if name not in METHODS:
        raise UsageError(f"unknown method {method!r}", "use one of " + ", ".join(METHODS))
    return name


def check_path(path: str) -> str:
    """A path relative to copper.url ("/account", "/people/search?x=1"); UsageError for a URL
    (the key goes to copper.url and nowhere else), a path without its leading slash, a ".."
    segment or characters a URL cannot carry."""
    text = path.strip()
    head = text.split("/", 1)[0]
    if "://" in text.split("?", 1)[0] or head.endswith(":"):
        raise UsageError(f"PATH must be relative to copper.url, not a URL: {path!r}",
                         "give the part after copper.url, e.g. /account (the API key is only "
                         "ever sent to copper.url)")
    if not text.startswith("/") or text.startswith("//"):
        raise UsageError(f"PATH must start with one /: {path!r}",
                         f"e.g. /{text.lstrip('/') or 'account'}")
    if any(not ch.isprintable() or ch.isspace() for ch in text):
        raise UsageError(f"PATH holds a space or a control character: {path!r}",
                         "percent-encode it (a space is %20)")
    if ".." in text.split("?", 1)[0].split("/"):
        raise UsageError(f"PATH must not step out of copper.url with '..': {path!r}",
                         "give the path from copper.url down")
    return text


def is_search(path: str) -> bool:
    """A search endpoint: the path (without its query) ends in /search."""
    return path.split("?", 1)[0].rstrip("/").endswith("/search")


def idempotent(method: str, path: str) -> bool:
    """Whether a request may be sent again after a lost answer: GET and POST .../search."""
    return method == "GET" or (method == "POST" and is_search(path))


def parse_json(data: bytes | str, what: str = "the request body") -> Any:
    """JSON text parsed; UsageError naming `what` and the problem when it is not JSON."""
    raw = data.encode() if isinstance(data, str) else data
    if not raw.strip():
        raise UsageError(f"{what} is empty, not JSON", 'give a JSON document, e.g. {"name": "Ada"}')
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise UsageError(f"{what} is not valid JSON ({exc})",
                         'fix it, e.g. {"name": "Ada"} (double quotes, no trailing commas)'
                         ) from None


def body_bytes(data: Any, what: str = "the request body") -> tuple[bytes | None, Any]:
    """(the bytes to send, the value they hold) for a body given as JSON text (bytes or str,
    checked and sent as it is) or as a value to encode; (None, None) for no body."""
    if data is None:
        return None, None
    if isinstance(data, (bytes, str)):
        value = parse_json(data, what)
        return (data.encode() if isinstance(data, str) else data), value
    try:
        return orjson.dumps(data), data
    except orjson.JSONEncodeError as exc:
        raise UsageError(f"{what} cannot be sent as JSON ({exc})") from None


def client_for(settings: Settings, *, debug: bool = False,
               notice: Callable[[str], None] | None = None) -> HttpClient:
    """The Copper client of the settings' profile; UsageError when the backend is not Copper."""
    if settings.backend != "copper":
        raise UsageError(f"oppcli api talks to Copper, but the selected backend is "
                         f"{settings.backend} (from {settings.source('backend')})",
                         "add --backend copper, or --profile NAME for a Copper profile")
    from oppcli.backends.copper import CopperBackend

    return CopperBackend.from_settings(settings, debug=debug, notice=notice).client


def request(client: HttpClient, method: str, path: str, data: Any = None, *,
            heard: Heard | None = None) -> ApiResponse:
    """One raw request: `data` as body_bytes() takes it. Retried only when idempotent()."""
    method, path = check_method(method), check_path(path)
    body, _ = body_bytes(data)
    if body is not None and method == "GET":
        raise UsageError("a GET request takes no body",
                         "Copper's searches are POST .../search, which take one")
    answer = client.call(method, path, body, idempotent=idempotent(method, path),
                         what=f"{method} {path}", raw=True, heard=heard)
    return ApiResponse(answer.status, answer.headers, answer.body)


def pages(client: HttpClient, path: str, data: Any = None, *, heard: Heard | None = None,
          notice: Callable[[str], None] | None = None) -> Iterator[list[Any]]:
    """Every page of a search endpoint (POST PATH), each a list, in order: page_number 1, 2,
    ... (from the body's page_number when it has one) of page_size 200 (or the body's),
    until a page comes back shorter than page_size. Stops, and says so to `notice`, at
    Copper's window of 100,000 results."""
    path = check_path(path)
    if not is_search(path):
        raise UsageError(f"only search endpoints are paged, and {path} is not one",
                         "page a POST .../search path, or leave out --paginate")
    _, value = body_bytes(data)
    criteria = {} if value is None else value
    if not isinstance(criteria, dict):
        raise UsageError("a paged search needs its body to be a JSON object",
                         'e.g. --data \'{"name": "Ada"}\'')
    size, number = criteria.get("page_size", PAGE_SIZE), criteria.get("page_number", 1)
    for key, given in (("page_size", size), ("page_number", number)):
        if isinstance(given, bool) or not isinstance(given, int) or given < 1:
            raise UsageError(f"{key} in the body must be a whole number of at least 1, "
                             f"not {given!r}", f"fix {key}, or leave it out")
    criteria = {**criteria, "page_size": size}
    while True:
        criteria["page_number"] = number
        what = f"POST {path} (page {number})"
        answer = client.call("POST", path, orjson.dumps(criteria), idempotent=True, what=what,
                             raw=True, heard=heard)
        try:
            page = orjson.loads(answer.body) if answer.body.strip() else []
        except orjson.JSONDecodeError:
            raise ServiceError(f"{what}: the answer is not JSON, so it cannot be paged",
                               "leave out --paginate to see it") from None
        if not isinstance(page, list):
            raise ServiceError(f"{what}: the answer is not a JSON array, so it cannot be paged",
                               "leave out --paginate to see it")
        yield page
        if len(page) < size:
            return
        if number * size >= SEARCH_WINDOW:
            if notice is not None:
                notice(f"warning: stopped after page {number}: Copper serves only the first "
                       f"{SEARCH_WINDOW:,} results of a search; narrow it to see the rest")
            return
        number += 1
