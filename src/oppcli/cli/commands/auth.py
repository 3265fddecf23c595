"""The Copper API key: auth login, logout, status and check.

The operations are the Session's (login, logout, auth_status; ops/auth.py, which says where a
key is looked for and where login keeps it): these commands parse the options, read the key
(asked on a terminal, or from stdin with --with-token), call them and render what they return.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Optional

import typer

from oppcli.cli.commands.common import SmallOutputOpt, run_of
from oppcli.errors import UsageError

if TYPE_CHECKING:
    from oppcli.cli.commands.common import Run
    from oppcli.ops.auth import AuthStatus

auth_app = typer.Typer(help="Log in to Copper (the API key in the system keyring), and check the "
                       "credentials.\n\nExample: oppcli --profile work auth login",
                       no_args_is_help=True)


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
    from oppcli.ops.auth import checked_email, checked_key

    session = run.session
    current = session.login_email()  # the config read (and its errors) before anything is asked
    streams = run.streams
    if email is not None:
        email = checked_email(email)
    if with_token:
        raw = streams.piped_stdin("--with-token reads the API key",
                                  "pipe it in (`oppcli auth login --with-token < key.txt`), or "
                                  "leave out --with-token to be asked")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise UsageError("the API key on stdin is not UTF-8 text",
                             "give the key as Copper shows it") from None
        key = checked_key(text, "on stdin")
    elif streams.can_prompt:
        key = checked_key(streams.ask("Copper API key (not shown)", secret=True), "given")
    else:
        raise UsageError("no terminal to ask for the API key on",
                         "pipe it in with --with-token: `oppcli auth login --with-token < key.txt`")
    if email is None and not current and not with_token and streams.can_prompt:
        email = checked_email(streams.ask("Email of the key's owner"))
    session.login(key, email, check=check, keyring=not no_keyring)  # says what it did on stderr


@auth_app.command("logout")
def auth_logout(ctx: typer.Context) -> None:
    """Remove the profile's API key from the system keyring and the config file.

    Says what it removed; with no key stored it says so and exits 0. COPPER_API_KEY, which
    is not stored by oppcli, stays set; the email stays in the profile.

    Example: oppcli --profile work auth logout
    """
    run_of(ctx).session.logout()  # says what it removed on stderr


@auth_app.command("status")
def auth_status(ctx: typer.Context, output: SmallOutputOpt = None) -> None:
    """Say where the profile's API key comes from (environment, keyring or config), never the key.

    Also the profile, backend, Copper URL and email, and every other place holding a key for
    the profile (used only when the ones before it are not set). Asks nothing of Copper
    (`oppcli auth check` does). Exit 3 when there is no key at all.

    Example: oppcli --profile work auth status -o json
    """
    run = run_of(ctx)
    fmt = run.output_format(output, ("table", "json"))
    status = run.session.auth_status()  # a keyring that fails: warned about on stderr
    if fmt == "json":
        import orjson

        run.streams.stdout.write(orjson.dumps(status.as_json(), option=orjson.OPT_INDENT_2)
                                 .decode() + "\n")
    else:
        _status_table(run, status)
    status.check()  # exit 3 when there is no key anywhere


def _status_table(run: Run, status: AuthStatus) -> None:
    from oppcli.output import literal

    places = {"environment": f"the environment variable {status.environment}",
              "keyring": status.keyring.location,
              "config": f"the config file {status.config_file}"}
    key_line = (f"{status.key} from {places[status.key_source]}" if status.key_source
                else "none (run `oppcli auth login`)")
    also = [places[p] for p, held in (("keyring", status.keyring.holds_key),
                                      ("config", status.config_holds_key))
            if held and p != status.key_source]
    rows = [("profile", status.profile), ("backend", status.backend), ("url", status.url),
            ("email", f"{status.email} (from {status.email_source})" if status.email else "none"),
            ("key", key_line)]
    if also:
        rows.append(("also in", "; ".join(also) + " (not used while the one above is set)"))
    keyring = status.keyring
    rows.append(("keyring", keyring.backend or ("failed: " + keyring.error if keyring.error
                                                else "none usable")))
    for name, value in rows:
        print(literal(f"{name + ':':<9}{value}"), file=run.streams.stdout)


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
    the config file's, so say so (nothing when there is no keyring, or it fails)."""
    from oppcli import credentials
    from oppcli.ops.auth import keyring_holds_key

    if keyring_holds_key(profile):
        run.streams.warn(f"{credentials.describe(profile)} holds a key for profile {profile!r}, "
                         "which is used before the config file's: `oppcli auth login` replaces "
                         "it, `oppcli auth logout` removes both")
