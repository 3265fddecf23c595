"""Shell-completion candidates: static choices, and names and ids from the local store (or,
on Copper, names from the lookup tables an earlier command cached; never the network).

Completion never makes a network request: names come from the local store's lookups.json
(a small file) or the Copper lookup cache, and ids from a byte scan of opportunities.jsonl.
Any failure completes nothing.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any

import typer

from oppcli.domain import fields as F
from oppcli.domain.options import Opt

# The shell scripts Typer would generate, with three fixes, installed over Typer's templates by
# use_fixed_scripts() so that completions/, `--install-completion` and `--show-completion` agree:
# - bash: rejoin the words readline splits at "=" and ":" (bash-completion's
#   _get_comp_words_by_ref), so `--custom-field Region=E<TAB>` completes the option name, and
#   quote a candidate that needs it (printf %q), so "Ada Park" or "Sales/Contract Sent" stays
#   one argument (plain ids, emails and field lists are left as they are);
# - zsh: when the file is autoloaded from $fpath (the usual install), complete on the first TAB
#   instead of only registering the function.
BASH_SCRIPT = r"""
%(complete_func)s() {
    local cur words cword
    if declare -F _get_comp_words_by_ref >/dev/null 2>&1; then
        _get_comp_words_by_ref -n =: cur words cword
    else
        cur=${COMP_WORDS[COMP_CWORD]}; words=("${COMP_WORDS[@]}"); cword=$COMP_CWORD
    fi
    local IFS=$'\n' prefix="" reply quoted
    local -a replies
    replies=( $( env COMP_WORDS="${words[*]}" \
                     COMP_CWORD=$cword \
                     %(autocomplete_var)s=complete_bash $1 ) )
    case $cur in *[=:]*) prefix=${cur%%"${cur##*[=:]}"} ;; esac
    COMPREPLY=()
    for reply in "${replies[@]}"; do
        quoted=${reply#"$prefix"}
        if [[ $quoted == *[!A-Za-z0-9,._+:@%%/=-]* ]]; then
            printf -v quoted '%%q' "$quoted"
        fi
        COMPREPLY+=("$quoted")
    done
    return 0
}

complete -o default -F %(complete_func)s %(prog_name)s
"""

ZSH_SCRIPT = r"""
#compdef %(prog_name)s

%(complete_func)s() {
  eval $(env _TYPER_COMPLETE_ARGS="${words[1,$CURRENT]}" %(autocomplete_var)s=complete_zsh %(prog_name)s)
}

if [[ ${zsh_eval_context[-1]} == loadautofunc ]]; then
  %(complete_func)s "$@"
else
  compdef %(complete_func)s %(prog_name)s
fi
"""


def use_fixed_scripts() -> None:
    """Put the fixed bash and zsh scripts in place of Typer's (cli/typer_glue.py)."""
    from oppcli.cli.typer_glue import use_fixed_scripts as install

    install(BASH_SCRIPT, ZSH_SCRIPT)


def for_opt(opt: Opt) -> Callable[..., list[str]] | None:
    """The completion of a declared option (domain/options.py)."""
    if opt.complete == "choices":
        return choices(opt.choices)
    if opt.complete == "custom_fields":
        return custom_fields
    if opt.complete == "ids":
        return ids
    if opt.complete:
        return names(opt.complete)
    return None


def _root_params(ctx: Any) -> dict[str, Any]:
    while ctx is not None and ctx.parent is not None:
        ctx = ctx.parent
    return dict(ctx.params) if ctx is not None else {}


def _settings(ctx: Any) -> Any:
    from oppcli.config import load_settings

    params = _root_params(ctx)
    flags = {"store": str(params["store"]) if params.get("store") else None,
             "backend": params.get("backend")}
    return load_settings(profile=params.get("profile"), flags=flags)


def _store(ctx: Any) -> Any:
    from oppcli.backends.local import LocalStore

    settings = _settings(ctx)
    if settings.backend != "local":
        return None
    return LocalStore.open(settings.store_path)


def _lookups(ctx: Any) -> Any:
    """The selected backend's lookup tables, without the network: the local store's, or the
    Copper tables cached by an earlier command (even when stale); None when there are none."""
    settings = _settings(ctx)
    if settings.backend == "local":
        from oppcli.backends.local import LocalStore

        return LocalStore.open(settings.store_path).lookups()
    from oppcli.backends.copper.cache import LookupCache
    from oppcli.domain.lookups import Lookups

    tables = LookupCache.for_settings(settings).load(fresh_only=False)
    return Lookups(tables) if tables is not None else None


def _matching(values: list[str], incomplete: str) -> list[str]:
    low = incomplete.casefold()
    head, sep, last = incomplete.rpartition(",")
    if sep:  # comma-separated lists complete their last item
        return [f"{head},{v}" for v in values if v.casefold().startswith(last.casefold())]
    return [v for v in values if v.casefold().startswith(low)]


def choices(values: tuple[str, ...]) -> Callable[[str], list[str]]:
    def complete(incomplete: str) -> list[str]:
        return _matching(list(values), incomplete)
    return complete


def names(table: str) -> Callable[[typer.Context, str], list[str]]:
    """Names from a lookup table of the selected local store (stages also as Pipeline/Stage)."""
    def complete(ctx: typer.Context, incomplete: str) -> list[str]:
        try:
            lk = _lookups(ctx)
        except Exception:
            return []
        if lk is None:
            return []
        rows = lk.rows(table)
        found = [str(r["name"]) for r in rows]
        if table == "stages":
            found += [f"{r['pipeline_name']}/{r['name']}" for r in rows]
        if table in ("users", "people"):
            found += [str(r["email"]) for r in rows if r.get("email")]
        return _matching(sorted(set(found), key=found.index), incomplete)
    return complete


def custom_fields(ctx: typer.Context, incomplete: str) -> list[str]:
    try:
        lk = _lookups(ctx)
        defs = lk.opportunity_fields() if lk is not None else []
    except Exception:
        return []
    name, sep, value = incomplete.partition("=")
    if not sep:
        return [d["name"] + "=" for d in defs if d["name"].casefold().startswith(name.casefold())]
    for d in defs:
        if d["name"].casefold() == name.casefold():
            options = [o["name"] for o in d.get("options") or []]
            if d.get("data_type") == "Checkbox":
                options = ["true", "false"]
            return [f"{d['name']}={o}" for o in options if o.casefold().startswith(value.casefold())]
    return []


def saved_names(ctx: typer.Context, incomplete: str) -> list[str]:
    """The selected profile's saved searches (read from the config file; no backend)."""
    try:
        from oppcli.ops.saved import all_saved

        names = list(all_saved(_settings(ctx).profile))
    except Exception:
        return []
    return _matching(names, incomplete)


def dimensions(ctx: typer.Context, incomplete: str) -> list[str]:
    """report --by: the dimensions, and cf:NAME for each Dropdown and MultiSelect field."""
    from oppcli.domain.report import DIMENSIONS

    found = [d for d in DIMENSIONS if d != "cf:NAME"]
    try:
        lk = _lookups(ctx)
        found += ["cf:" + d["name"] for d in (lk.opportunity_fields() if lk is not None else [])
                  if d.get("data_type") in ("Dropdown", "MultiSelect")]
    except Exception:
        pass
    return _matching(found, incomplete)


def ids(ctx: typer.Context, incomplete: str) -> list[str]:
    """Opportunity ids of the local store that start with what was typed, at most ID_LIMIT.

    The file is in id order, and the ids starting with "12" are a few contiguous ranges
    (12, 120-129, 1200-1299, ...): each is found by binary search over a memory map and read
    line by line, so a TAB costs the same at a million deals as at a hundred. A file out of
    order (edited by hand) is searched with one regex pass over the map, never copied."""
    if incomplete and not (incomplete.isascii() and incomplete.isdigit()):
        return []
    try:
        store = _store(ctx)
        if store is None:
            return []
        return _ids_from(store.data_path, incomplete, int(store.meta.get("next_id") or 0),
                         in_order=store.in_id_order())
    except Exception:
        return []


ID_LIMIT = 500
_ID_HEAD = re.compile(rb'\{"id":(\d+)[,}]')


def _ids_from(path: Any, prefix: str, next_id: int, *, in_order: bool = True) -> list[str]:
    """`in_order`: the store vouches that the file is in id order (else a regex pass)."""
    import mmap

    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size == 0:
            return []
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
            end = m.rfind(b"\n") + 1  # a torn tail is not a record
            found = _ids_in_order(m, end, prefix, next_id) if in_order else None
            if found is not None:
                return found
            rx = re.compile(rb'(?:^|\n)\{"id":(' + prefix.encode() + rb'\d*)[,}]')
            out = []
            for match in rx.finditer(m, 0, end):
                out.append(match.group(1).decode())
                if len(out) >= ID_LIMIT:
                    break
            return out


def _ids_in_order(m: Any, end: int, prefix: str, next_id: int) -> list[str] | None:
    """The ids with the prefix by ranges and binary search; None when the file is not in id
    order (or a line is not shaped like a record) where it was looked at."""
    top = max(next_id, 1)
    if not prefix:
        ranges = [(0, top + 1)]
    elif prefix.startswith("0"):
        return []
    else:
        base = int(prefix)
        ranges = [(base * 10 ** k, (base + 1) * 10 ** k)
                  for k in range(0, len(str(top)) - len(prefix) + 2)]
    out: list[str] = []
    for lo, hi in ranges:
        pos = _first_at_or_above(m, end, lo)
        if pos is None:
            return None
        last = -1
        while pos < end and len(out) < ID_LIMIT:
            head = _ID_HEAD.match(m, pos, min(pos + 32, end))
            if head is None:
                return None
            ident = int(head[1])
            if ident < last:
                return None
            last = ident
            if ident >= hi:
                break
            out.append(str(ident))
            pos = m.find(b"\n", pos, end) + 1 or end
        if len(out) >= ID_LIMIT:
            break
    return out


def _first_at_or_above(m: Any, end: int, target: int) -> int | None:
    """Where the first line with an id >= target starts (end when none)."""
    lo, hi = 0, end
    while lo < hi:
        start = m.rfind(b"\n", 0, (lo + hi) // 2) + 1
        if start < lo:
            start = lo
        head = _ID_HEAD.match(m, start, min(start + 32, end))
        if head is None:
            return None
        if int(head[1]) < target:
            lo = m.find(b"\n", start, end) + 1 or end
        else:
            hi = start
    return lo


def field_names(incomplete: str) -> list[str]:
    return _matching(list(F.FIELD_NAMES), incomplete)
