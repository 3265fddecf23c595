"""oppcli api: a raw Copper request (as `gh api`), over Session.api (ops/api_call.py)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import IO, Annotated, Any, Optional

import typer

from oppcli.cli import completion as C
from oppcli.cli.commands.common import Run, run_of
from oppcli.errors import UsageError

API_FORMATS = ("json", "jsonl")


def api(
    ctx: typer.Context,
    method: Annotated[str, typer.Argument(
        help="GET, POST, PUT, PATCH or DELETE (any case).", metavar="METHOD",
        autocompletion=C.choices(("GET", "POST", "PUT", "PATCH", "DELETE")))],
    path: Annotated[str, typer.Argument(
        help="The endpoint, relative to the profile's copper.url: /account, /people/search, "
        "/tasks/123 (a query string may follow).", metavar="PATH")],
    data: Annotated[Optional[str], typer.Option(
        "--data", "-d", help="The JSON body: the text itself, @FILE to read a file, or - to "
        "read stdin. Checked before anything is sent.", metavar="JSON|@FILE|-")] = None,
    paginate: Annotated[bool, typer.Option(
        "--paginate", help="POST .../search only: fetch page_number 1, 2, ... (page_size 200 "
        "unless the body sets it) until a short page; every page's elements, in one array.")
    ] = False,
    output: Annotated[Optional[str], typer.Option(
        "-o", "--output", help="json (default: the body as JSON, an array one element per "
        "line) or jsonl (an array's elements one per line).", metavar="FORMAT",
        autocompletion=C.choices(API_FORMATS))] = None,
    include: Annotated[bool, typer.Option(
        "--include", "-i", help="Print each answer's status line and headers to stderr (a "
        "retried attempt's too); the request's headers, which hold the key, never.")] = False,
) -> None:
    """Send a raw request to the Copper API, for what oppcli has no command for.

    The request carries the profile's credentials (copper.url, key and email). GET, and POST
    to a search endpoint (a path ending in /search), are paced and retried like every oppcli
    request. Anything else (POST, PUT, PATCH, DELETE) is sent once, since a second attempt
    could do it twice, and is not audited: being outside oppcli's model, it is not in
    `oppcli history` and `oppcli undo` cannot take it back. Copper backend only.

    The body of the answer goes to stdout: JSON as JSON (an object indented, an array one
    element per line), anything else as it is. An error status prints nothing on stdout,
    Copper's message on stderr, and exits with oppcli's codes: 401/403 3, 404 4, 409/422 6,
    429 and 5xx (after the retries) 5, any other 4xx 2.

    Example: oppcli api POST /people/search --data '{"name": "Ada"}' --paginate -o jsonl
    """
    from oppcli.ops import api_call

    run = run_of(ctx)
    fmt = (output or "json").strip().lower()
    if fmt not in API_FORMATS:
        raise UsageError(f"unknown output format {output!r} for api", "valid: json, jsonl")
    verb = api_call.check_method(method)
    where = api_call.check_path(path)
    if paginate and (verb != "POST" or not api_call.is_search(where)):
        raise UsageError(f"--paginate pages Copper's search endpoints, and {verb} {where} is "
                         "not one", "use POST .../search (e.g. POST /people/search), or leave "
                         "out --paginate")
    if data is not None and verb == "GET":
        raise UsageError("a GET request takes no body (--data)",
                         "Copper's searches are POST .../search, which take one")
    body: bytes | None = None
    if data is not None:
        body, what = _read_data(run, data)
        api_call.parse_json(body, what)  # nothing is sent when it is not JSON
    session = run.session
    heard = _printer(run) if include else None
    if paginate:
        pages = session.api_pages(where, body, heard=heard)
        # json: all pages first, so that a failure half-way leaves stdout empty, not a broken
        # array; jsonl: each page as it arrives (the lines written stay valid).
        _write(run, fmt, [[item for page in pages for item in page]] if fmt == "json" else pages)
        return
    answer = session.api(verb, where, body, heard=heard)
    _write_body(run, fmt, answer.content)


def _read_data(run: Run, data: str) -> tuple[bytes, str]:
    """(the body's bytes, how to name it in an error) for --data TEXT, @FILE or -."""
    if data in ("-", "@-"):
        raw = run.streams.piped_stdin("--data - reads the request body",
                                      "pipe the JSON in: echo '{}' | oppcli api POST PATH --data -")
        return raw, "the request body on stdin (--data -)"
    if data.startswith("@"):
        name = data[1:]
        try:
            with open(name, "rb") as f:
                return f.read(), f"--data {data}"
        except OSError as exc:
            raise UsageError(f"cannot read the request body from {name}: {exc.strerror}",
                             "give --data @FILE an existing file, or the JSON itself") from None
    return data.encode(), "--data"


def _printer(run: Run) -> Any:
    """What --include does with each answer: status line and headers to stderr, as received
    (shown literally, the key masked should a server ever echo it)."""
    from oppcli.io import literal

    def heard(status_line: str, headers: Mapping[str, str]) -> None:
        lines = [status_line, *(f"{name}: {value}" for name, value in headers.items()), ""]
        text = "\n".join(literal(line) for line in lines)
        # Read now, not before the request: a key from the keyring is looked up only then.
        key = str(run.session.settings.values.get("copper.api_key") or "").strip()
        if key:
            text = text.replace(key, "****")
        err = run.streams.stderr
        err.write(text + "\n")
        err.flush()
    return heard


def _write_body(run: Run, fmt: str, content: bytes) -> None:
    """A single answer's body: JSON in the format; empty, nothing; anything else as it is."""
    import orjson

    if not content.strip():
        return
    try:
        value = orjson.loads(content)
    except orjson.JSONDecodeError:
        _bytes_out(run, lambda out: out.write(content))
        return
    if isinstance(value, list) or fmt == "jsonl":
        _write(run, fmt, [value if isinstance(value, list) else [value]])
        return
    _bytes_out(run, lambda out: out.write(orjson.dumps(value, option=orjson.OPT_INDENT_2) + b"\n"))


def _write(run: Run, fmt: str, pages: Iterable[list[Any]]) -> None:
    """Pages of elements as oppcli writes lists: json one array with one compact element per
    line (`[]` when empty), jsonl one element per line, flushed after each page."""
    import orjson

    def write(out: IO[bytes]) -> None:
        count = 0
        for page in pages:
            for item in page:
                line = orjson.dumps(item)
                if fmt == "json":
                    out.write((b"[\n" if count == 0 else b",\n") + line)
                else:
                    out.write(line + b"\n")
                count += 1
            out.flush()
        if fmt == "json":
            out.write(b"[]\n" if count == 0 else b"\n]\n")
    _bytes_out(run, write)


def _bytes_out(run: Run, write: Any) -> None:
    run.streams.stdout.flush()
    out = run.streams.stdout_bytes
    write(out)
    out.flush()
