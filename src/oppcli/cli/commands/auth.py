"""The Copper API key: auth login, logout, status and check.

Where a key is looked for, first found wins: COPPER_API_KEY (or OPPCLI_COPPER_API_KEY) in the
environment, then the system keyring (service "oppcli", user the profile's name; see
oppcli.credentials), then the profile's 0600 config file. `login` stores in the keyring when a
usable one exists, else in the config file, and leaves the key in one of the two only.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from oppcli.cli.commands.common import SmallOutputOpt, run_of
from oppcli.errors import ConfigError, OppcliError, UsageError

if TYPE_CHECKING:
    from oppcli.cli.commands.common import Run
    from oppcli.config import Settings

auth_app = typer.Typer(help="Log in to Copper (the API key in the system keyring), and check the "
                       "credentials.\n\nExample: oppcli --profile work auth login",
                       no_args_is_help=True)

KEY_ENV = ("COPPER_API_KEY", "OPPCLI_COPPER_API_KEY")


def _env_key_name() -> str | None:
    return next((name for name in KEY_ENV if os.environ.get(name)), None)


def _stored_in_config(profile: str) -> tuple[dict[str, Any], Any]:
    """The profile's own settings in the config file (flattened), and the file's path."""
    from oppcli.config import _flatten, config_path, read_config

    path = config_path()
    table = read_config(path).get("profiles", {}).get(profile, {})
    return (_flatten(table) if isinstance(table, dict) else {}), path


def _checked_key(text: str, where: str) -> str:
    """The key as typed or piped, stripped; UsageError (never echoing it) when it cannot be one."""
    key = text.strip().lstrip("\ufeff").strip()
    if not key:
        raise UsageError(f"no API key {where}", "give the key Copper shows under Settings > "
                         "Integrations > API Keys")
    if "\n" in key or "\r" in key:
        raise UsageError(f"the API key {where} holds more than one line", "give the key alone")
    try:
        key.encode("latin-1")
    except UnicodeEncodeError:
        ok = False
    else:
        ok = "\0" not in key and " " not in key and "\t" not in key
    if not ok:
        raise UsageError(f"the API key {where} holds characters a key cannot have (a space, a "
                         "pasted quote?)", "give the key as Copper shows it")
    return key


def _checked_email(text: str) -> str:
    email = text.strip()
    if "@" not in email or any(ch in email for ch in "\r\n\0 "):
        raise UsageError(f"invalid email {email!r}", "give the email of the key's owner, "
                         "such as you@example.com")
    return email


def _whoami(run: Run, settings: Settings, key: str, email: str) -> dict[str, Any]:
    """GET /users/me with this key and email (not the stored ones); an error says nothing was
    stored."""
    from dataclasses import replace

    from oppcli.backends.copper import CopperBackend

    trial = replace(settings, values={**settings.values, "copper.api_key": key,
                                      "copper.user_email": email},
                    sources={**settings.sources, "copper.api_key": "auth login",
                             "copper.user_email": "auth login"},
                    keyring_checked=True)
    try:
        return CopperBackend.from_settings(trial, debug=run.debug, notice=run.notice).whoami()
    except ConfigError as exc:
        if exc.message.startswith("Copper refused"):
            raise ConfigError(f"{exc.message}: nothing stored",
                              f"check the key, and that {email} is its owner's email (--email)"
                              ) from None
        exc.message += ": nothing stored"
        raise
    except OppcliError as exc:
        exc.message += ": nothing stored"
        exc.hint = f"{exc.hint}; or add --no-check" if exc.hint else "try again, or add --no-check"
        raise


@auth_app.command("login")
def auth_login(
    ctx: typer.Context,
    with_token: Annotated[bool, typer.Option(
        "--with-token", help="Read the key from stdin (a pipe or a file), never asking.")] = False,
    email: Annotated[Optional[str], typer.Option(
        "--email", help="Email of the key's owner, kept in the profile (Copper needs it with "
        "the key). Default: copper.user_email, else asked on a terminal.",
        metavar="EMAIL")] = None,
    check: Annotated[bool, typer.Option(
        "--check/--no-check", help="Ask Copper (GET /users/me) whether it accepts the key "
        "before storing it; a refused key exits 3 and nothing is stored.")] = True,
    no_keyring: Annotated[bool, typer.Option(
        "--no-keyring", help="Keep the key in the profile's config file (0600) even when a "
        "system keyring is usable.")] = False,
) -> None:
    """Store a Copper API key: in the system keyring when there is one, else in the 0600 config.

    On a terminal it asks for the key (not shown as typed) and, when none is set, the email;
    --with-token reads the key from stdin instead. The key is checked with Copper first
    (--no-check: not), then kept for the selected profile in one place only: the keyring
    (service oppcli, user the profile's name) or the config file. COPPER_API_KEY, when set,
    still wins over it.

    Example: oppcli --profile work auth login --with-token --email me@example.com < key.txt
    """
    run = run_of(ctx)
    from oppcli import credentials
    from oppcli.config import load_settings, selected_profile, set_value

    profile, _ = selected_profile(run.profile)
    settings = load_settings(profile=run.profile, flags={"backend": run.backend},
                             missing_ok=True)
    streams = run.streams
    if email is not None:
        email = _checked_email(email)
    if with_token:
        raw = streams.piped_stdin("--with-token reads the API key",
                                  "pipe it in (`oppcli auth login --with-token < key.txt`), or "
                                  "leave out --with-token to be asked")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise UsageError("the API key on stdin is not UTF-8 text",
                             "give the key as Copper shows it") from None
        key = _checked_key(text, "on stdin")
    elif streams.can_prompt:
        key = _checked_key(streams.ask("Copper API key (not shown)", secret=True), "given")
    else:
        raise UsageError("no terminal to ask for the API key on",
                         "pipe it in with --with-token: `oppcli auth login --with-token < key.txt`")
    current = str(settings.values.get("copper.user_email") or "").strip()
    if email is None and not current and not with_token and streams.can_prompt:
        email = _checked_email(streams.ask("Email of the key's owner"))
    use_email = email or current

    if check:
        if not use_email:
            raise UsageError("no email for the API key: Copper checks the two together",
                             "add --email you@example.com (or --no-check to store the key "
                             "unchecked)")
        user = _whoami(run, settings, key, use_email)
        name = user.get("name") or "?"
        run.notice(f"Copper at {str(settings.values['copper.url']).rstrip('/')} accepts the key: "
                   f"{name} <{user.get('email') or use_email}>, user id {user.get('id')}")

    # Stored in one place only: a copy left in the other would shadow it or outlive a logout.
    stored_in: str | None = None
    failed = False
    if not no_keyring:
        try:
            stored_in = credentials.store(profile, key)
        except credentials.KeyringFailed as exc:
            failed = True
            streams.warn(f"{exc}; keeping the key in the config file instead")
    own, path = _stored_in_config(profile)
    if stored_in is not None:
        run.notice(f"stored the API key of profile {profile!r} in {credentials.describe(profile)}"
                   f", backend {stored_in}")
        if own.get("copper.api_key"):
            set_value(profile, "copper.api_key", None)
            run.notice(f"removed the older key from the config file {path}")
    else:
        path = set_value(profile, "copper.api_key", key)
        why = ("--no-keyring" if no_keyring else "the keyring failed" if failed
               else "no usable system keyring")
        run.notice(f"stored the API key of profile {profile!r} in the config file {path} (0600; "
                   f"{why})")
        if no_keyring:
            try:
                if credentials.delete(profile):
                    run.notice(f"removed the older key from {credentials.describe(profile)}")
            except credentials.KeyringFailed as exc:
                streams.warn(f"{exc}: a key it holds for profile {profile!r} would be used "
                             "instead of this one")
    if email is not None and email != own.get("copper.user_email"):
        set_value(profile, "copper.user_email", email)
        run.notice(f"set copper.user_email in profile {profile!r} ({path})")
    elif not use_email:
        run.notice(f"no email for the key yet: set it with `oppcli --profile {profile} config set "
                   "copper.user_email you@example.com`")
    env_name = _env_key_name()
    if env_name:
        streams.warn(f"{env_name} is set: it is used instead of the stored key while it is")
    if settings.backend != "copper":
        run.notice(f"profile {profile!r} uses the {settings.backend} backend (from "
                   f"{settings.source('backend')}); `oppcli --profile {profile} config set "
                   "backend copper` makes Copper its default")


@auth_app.command("logout")
def auth_logout(ctx: typer.Context) -> None:
    """Remove the profile's API key from the system keyring and the config file.

    Says what it removed; with no key stored it says so and exits 0. COPPER_API_KEY, which
    is not stored by oppcli, stays set; the email stays in the profile.

    Example: oppcli --profile work auth logout
    """
    run = run_of(ctx)
    from oppcli import credentials
    from oppcli.config import selected_profile, set_value

    profile, _ = selected_profile(run.profile)
    removed = False
    problem: credentials.KeyringFailed | None = None
    try:
        if credentials.delete(profile):
            removed = True
            run.notice(f"removed the API key of profile {profile!r} from "
                       f"{credentials.describe(profile)}")
    except credentials.KeyringFailed as exc:
        problem = exc
    own, path = _stored_in_config(profile)
    if own.get("copper.api_key"):
        set_value(profile, "copper.api_key", None)
        removed = True
        run.notice(f"removed the API key of profile {profile!r} from the config file {path}")
    env_name = _env_key_name()
    if env_name:
        run.notice(f"{env_name} is still set in the environment: unset it too")
    if problem is not None:
        raise ConfigError(f"{problem}: a key it holds for profile {profile!r} is still there",
                          "unlock the keyring and run `oppcli auth logout` again")
    if not removed:
        run.notice(f"no API key stored for profile {profile!r} (keyring or config file): "
                   "nothing removed")


def _status(settings: Settings) -> tuple[dict[str, Any], str | None]:
    """What `auth status` reports, and a warning to show (the keyring failing), if any."""
    from oppcli import credentials
    from oppcli.config import mask

    profile = settings.profile
    own, path = _stored_in_config(profile)
    env_name = _env_key_name()
    warning = None
    backend_name: str | None = None
    from_keyring: str | None = None
    error: str | None = None
    try:
        backend_name = credentials.backend_name()
        from_keyring = credentials.get(profile) if backend_name else None
    except credentials.KeyringFailed as exc:
        error, warning = str(exc), str(exc)
    from_config = str(own.get("copper.api_key") or "")
    if env_name:
        source, location, key = "environment", env_name, str(os.environ[env_name])
    elif from_keyring:
        source, location, key = "keyring", credentials.describe(profile), from_keyring
    elif from_config:
        source, location, key = "config", str(path), from_config
    else:
        source, location, key = None, None, ""
    in_keyring = None if error else bool(from_keyring)
    in_config = bool(from_config)
    return {
        "profile": profile,
        "backend": settings.backend,
        "url": settings.values["copper.url"],
        "email": settings.values.get("copper.user_email"),
        "email_source": settings.source("copper.user_email"),
        "key_source": source,
        "key_location": location,
        "key": mask(key) if key else None,
        "environment": env_name,
        "keyring": {"backend": backend_name, "service": credentials.SERVICE, "username": profile,
                    "holds_key": in_keyring, "error": error},
        "config_file": {"path": str(path), "holds_key": in_config},
    }, warning


@auth_app.command("status")
def auth_status(ctx: typer.Context, output: SmallOutputOpt = None) -> None:
    """Say where the profile's API key comes from (environment, keyring or config), never the key.

    Also the profile, backend, Copper URL and email, and every other place holding a key for
    the profile (used only when the ones before it are not set). Asks nothing of Copper
    (`oppcli auth check` does). Exit 3 when there is no key at all.

    Example: oppcli --profile work auth status -o json
    """
    run = run_of(ctx)
    import orjson

    fmt = run.output_format(output, ("table", "json"))
    settings = run.session.settings
    doc, warning = _status(settings)
    if warning:
        run.streams.warn(warning)
    if fmt == "json":
        run.streams.stdout.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        from oppcli import credentials
        from oppcli.output import literal

        places = {"environment": f"the environment variable {doc['environment']}",
                  "keyring": credentials.describe(settings.profile),
                  "config": f"the config file {doc['config_file']['path']}"}
        key_line = (f"{doc['key']} from {places[doc['key_source']]}" if doc["key_source"]
                    else "none (run `oppcli auth login`)")
        also = [places[p] for p, held in (("keyring", doc["keyring"]["holds_key"]),
                                          ("config", doc["config_file"]["holds_key"]))
                if held and p != doc["key_source"]]
        rows = [("profile", doc["profile"]), ("backend", doc["backend"]), ("url", doc["url"]),
                ("email", f"{doc['email']} (from {doc['email_source']})" if doc["email"]
                 else "none"),
                ("key", key_line)]
        if also:
            rows.append(("also in", "; ".join(also) + " (not used while the one above is set)"))
        keyring = doc["keyring"]
        rows.append(("keyring", keyring["backend"] or ("failed: " + keyring["error"]
                                                       if keyring["error"] else "none usable")))
        for name, value in rows:
            print(literal(f"{name + ':':<9}{value}"), file=run.streams.stdout)
    if not doc["key_source"]:
        why = f" ({doc['keyring']['error']})" if doc["keyring"]["error"] else ""
        raise ConfigError(f"no Copper API key for profile {settings.profile!r}{why}",
                          "run `oppcli auth login`, or set COPPER_API_KEY")


@auth_app.command("check")
def auth_check(ctx: typer.Context, output: SmallOutputOpt = None) -> None:
    """Ask Copper who the API key belongs to (GET /users/me); exit 3 when it is refused.

    Checks the selected profile's Copper settings whichever backend is selected; the key comes
    from COPPER_API_KEY, the system keyring or the profile (stderr says which), the email from
    COPPER_USER_EMAIL or the profile.

    Example: oppcli --profile work auth check -o json
    """
    run = run_of(ctx)
    import orjson

    from oppcli.backends.copper import CopperBackend

    fmt = run.output_format(output, ("table", "json"))
    settings = run.session.settings
    if settings.backend != "copper":
        run.notice(f"checking the Copper settings of profile {settings.profile!r} "
            f"(the selected backend is {settings.backend})")
    backend = CopperBackend.from_settings(settings, debug=run.debug, notice=run.notice)
    user = backend.whoami()
    run.notice(f"the API key came from {settings.source('copper.api_key')}")
    if fmt == "json":
        run.streams.stdout.write(orjson.dumps(user).decode() + "\n")
        return
    email = f" <{user['email']}>" if user.get("email") else ""
    from oppcli.output import literal

    print(literal(f"{user.get('name', '?')}{email}, user id {user.get('id')}, at "
                  f"{backend.client.base}"), file=run.streams.stdout)  # the account's text, shown literally


def warn_if_the_keyring_wins(run: Run, profile: str) -> None:
    """After `config set copper.api_key`: a key in the keyring for the profile is used before
    the config file's, so say so (nothing when there is no keyring)."""
    from oppcli import credentials

    try:
        held = credentials.get(profile)
    except credentials.KeyringFailed:
        return
    if held:
        run.streams.warn(f"{credentials.describe(profile)} holds a key for profile {profile!r}, "
                         "which is used before the config file's: `oppcli auth login` replaces "
                         "it, `oppcli auth logout` removes both")
