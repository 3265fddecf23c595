"""Setting up: init, and the config commands."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from oppcli.cli.commands.common import SmallOutputOpt, run_of
from oppcli.errors import UsageError


# ---- init -----------------------------------------------------------------------------------
def init(
    ctx: typer.Context,
    sample: Annotated[bool, typer.Option("--sample", help="Fill the new store with demo data.")] = False,
    timezone: Annotated[Optional[str], typer.Option(
        "--timezone", help="The store's time zone (an IANA name such as Europe/Paris, or "
        "+HH:MM; default UTC): Date custom fields are midnights there, as in a Copper account.",
        metavar="ZONE")] = None,
) -> None:
    """Create the local store (at --store, OPPCLI_STORE, the profile's store or the default).

    Running it again on an existing store changes nothing.

    Example: oppcli init --sample && oppcli list
    """
    run = run_of(ctx)
    from oppcli.backends.local import LocalStore
    from oppcli.domain.sample import DEFAULT_LOOKUPS, SAMPLE_LOOKUPS, sample_records

    settings = run.session.settings
    if settings.backend != "local":
        raise UsageError(f"init creates a local store, but the backend is {settings.backend} "
                         f"(from {settings.source('backend')})", "add --backend local")
    path = settings.store_path
    if LocalStore.exists(path):
        store = LocalStore.open(path)
        count = sum(1 for _ in store.scan())
        run.notice(f"a store already exists at {path} ({count} opportunities); left unchanged")
        return
    extra = {}
    if timezone is not None:
        from oppcli.domain.values import parse_timezone

        parse_timezone(timezone, "--timezone")
        extra["timezone"] = timezone.strip()
    records = sample_records(date_order=settings.date_order) if sample else []
    LocalStore.create_store(path, lookups=SAMPLE_LOOKUPS if sample else DEFAULT_LOOKUPS,
                            date_order=settings.date_order, records=records, extra=extra)
    what = f" with {len(records)} sample opportunities" if sample else ""
    run.notice(f"created a store at {path}{what}")


# ---- config ----------------------------------------------------------------------------------
config_app = typer.Typer(help="Show and change settings (a TOML file; see `oppcli config path`)."
                         "\n\nExample: oppcli --profile work config set backend copper",
                         no_args_is_help=True)


KEY_HELP = ("Setting: backend, store, date_order (alias copper.date_order), copper.url, "
            "copper.api_key, copper.user_email, copper.rate_limit, copper.rate_window, "
            "copper.timeout, copper.retries, copper.backoff, copper.cache_ttl.")


def _complete_keys(incomplete: str) -> list[str]:
    from oppcli.config import KEYS

    return [k for k in KEYS if k.startswith(incomplete)]


@config_app.command("show")
def config_show(ctx: typer.Context, output: SmallOutputOpt = None) -> None:
    """Every setting, its value and where it came from (the API key masked).

    Example: oppcli --profile work config show
    """
    run = run_of(ctx)
    import orjson

    from oppcli.config import KEYS, mask

    settings = run.session.settings
    settings.resolve_api_key(warn=run.streams.warn)  # a key in the keyring is the one used
    rows = [{"key": k, "value": (mask(settings.values[k]) if KEYS[k].secret and settings.values[k]
                                 else settings.values[k]),
             "source": settings.source(k)} for k in KEYS]
    fmt = run.output_format(output, ("table", "json"))
    if fmt == "table":
        from oppcli.output import write_settings_table

        write_settings_table(rows, f"profile {settings.profile} ({settings.config_file})",
                             run.streams.stdout, style=run.streams.console_style())
        return
    doc = {"profile": settings.profile, "config_file": str(settings.config_file),
           "settings": {r["key"]: r["value"] for r in rows},
           "sources": {r["key"]: r["source"] for r in rows}}
    run.streams.stdout.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n")


@config_app.command("get")
def config_get(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(help=KEY_HELP, metavar="KEY",
                                       autocompletion=_complete_keys)],
    reveal: Annotated[bool, typer.Option("--reveal", help="Print a secret unmasked.")] = False,
) -> None:
    """Print one setting's effective value (empty line when unset).

    Example: oppcli config get store
    """
    run = run_of(ctx)
    from oppcli.config import KEYS, canonical_key, mask

    name = canonical_key(key)
    if name == "copper.api_key":
        run.session.settings.resolve_api_key(warn=run.streams.warn)
    value = run.session.settings.values[name]
    if value is not None and KEYS[name].secret and not reveal:
        value = mask(value)
    print("" if value is None else value, file=run.streams.stdout)


@config_app.command("set")
def config_set(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(help=KEY_HELP, metavar="KEY",
                                       autocompletion=_complete_keys)],
    value: Annotated[str, typer.Argument(
        help="New value: backend local|copper; date_order MDY|DMY; store a path; copper.url an "
        "https:// URL (http only for loopback).", metavar="VALUE")],
) -> None:
    """Set a key in the selected profile (--profile, OPPCLI_PROFILE, or default).

    Example: oppcli config set date_order DMY
    """
    run = run_of(ctx)
    from oppcli.config import canonical_key, selected_profile, set_value

    profile, _ = selected_profile(run.profile)
    path = set_value(profile, key, value)
    run.notice(f"set {key} in profile {profile!r} ({path})")
    if canonical_key(key) == "copper.api_key":
        from oppcli.cli.commands.auth import warn_if_the_keyring_wins

        warn_if_the_keyring_wins(run, profile)


@config_app.command("unset")
def config_unset(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(help=KEY_HELP, metavar="KEY",
                                       autocompletion=_complete_keys)],
) -> None:
    """Remove a key from the selected profile, so its default applies again.

    Example: oppcli config unset store
    """
    run = run_of(ctx)
    from oppcli.config import selected_profile, set_value

    profile, _ = selected_profile(run.profile)
    path = set_value(profile, key, None)
    run.notice(f"unset {key} in profile {profile!r} ({path})")


@config_app.command("path")
def config_path_cmd(ctx: typer.Context) -> None:
    """Print the config file's path.

    Example: oppcli config path
    """
    from oppcli.config import config_path

    print(config_path(), file=run_of(ctx).streams.stdout)
