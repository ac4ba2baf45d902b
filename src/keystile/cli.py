"""The ``keystile`` command line.

Every command fails with one line on standard error and a non-zero exit
status, never a traceback: ``error: <what> `` for Keystile errors, the usage
message for bad arguments. Formatting (``_format_*``) is kept apart from
printing so it can be tested without a terminal.
"""

from __future__ import annotations

import ipaddress
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import anyio
import click
import typer

from keystile.errors import ConfigurationError, InvalidRequestError, KeystileError
from keystile.flows.mfa_admin import MfaReset, MfaStatus
from keystile.oauth import grants
from keystile.oauth.clients import NewClient
from keystile.runtime import Purged, Runtime
from keystile.settings import Settings, load_settings
from keystile.store import migrate
from keystile.store.clients import ClientRow
from keystile.store.database import Database
from keystile.store.users import User
from keystile.strategies.totp.rotation import RotationReport, rotate_secrets

app = typer.Typer(
    name="keystile",
    help="Keystile: passwordless codes, TOTP, recovery codes and brute-force protection.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
db_app = typer.Typer(help="Database administration.", no_args_is_help=True)
user_app = typer.Typer(help="User administration.", no_args_is_help=True)
keys_app = typer.Typer(help="Key administration.", no_args_is_help=True)
mfa_app = typer.Typer(help="Second-factor administration.", no_args_is_help=True)
client_app = typer.Typer(help="OAuth 2.0 client administration.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(user_app, name="user")
user_app.add_typer(mfa_app, name="mfa")
app.add_typer(keys_app, name="keys")
app.add_typer(client_app, name="client")

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="TOML settings file (also KEYSTILE_CONFIG_FILE); environment variables win.",
        dir_okay=False,
    ),
]


@app.callback()
def _root(config: ConfigOption = None) -> None:
    if config is not None:
        # Through the environment, so `serve --workers N` processes read the same file.
        os.environ["KEYSTILE_CONFIG_FILE"] = str(config.resolve())


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _runtime() -> Runtime:
    return Runtime(load_settings())


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.", min=1, max=64)] = 1,
    allow_remote_development: Annotated[
        bool,
        typer.Option(
            "--allow-remote-development",
            help="Let development mode (codes printed, dev mailbox) listen beyond loopback.",
        ),
    ] = False,
) -> None:
    """Run the Keystile service (uvicorn). In development mode, migrates the database first."""
    import uvicorn

    settings = load_settings()  # creates development keys once, before workers start
    if settings.mode == "development" and not allow_remote_development and not _is_loopback(host):
        raise ConfigurationError(
            [
                f"--host {host}: development mode prints codes and serves the dev mailbox; "
                "it listens on loopback only. Set KEYSTILE_MODE=production, or pass "
                "--allow-remote-development if this network is yours alone"
            ]
        )
    if workers > 1 and settings.rate_limit_backend == "memory":
        raise ConfigurationError(
            [
                "KEYSTILE_RATE_LIMIT_BACKEND=memory keeps limits per process: with --workers "
                f"{workers} each would allow the full limit; use database or redis"
            ]
        )
    runtime = Runtime(settings)
    try:
        runtime.prepare_database()
    finally:
        runtime.close()
    typer.echo(_format_banner(settings, host, port, workers), err=True)
    uvicorn.run(
        "keystile.web.asgi:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
    )


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the database schema to the newest revision."""
    runtime = _runtime()
    try:
        before, after = runtime.upgrade_database()
    finally:
        runtime.close()
    typer.echo(f"database at revision {after} (was {before or 'empty'})")


@db_app.command("purge")
def db_purge(
    audit_days: Annotated[
        int | None,
        typer.Option(help="Also delete audit events older than this many days (default: keep)."),
    ] = None,
) -> None:
    """Delete expired tokens and codes and rate-limit hits older than a day (run from cron)."""
    runtime = _runtime()

    async def purge() -> Purged:
        return await runtime.purge(audit_days=audit_days)

    try:
        runtime.prepare_database()
        purged = anyio.run(purge)
    finally:
        runtime.close()
    typer.echo(
        f"deleted {purged.tokens} expired tokens, {purged.limiter_hits} rate-limit hits, "
        f"{purged.audit_events} audit events"
    )


@keys_app.command("rotate")
def keys_rotate(
    batch_size: Annotated[
        int, typer.Option(help="Rows per write transaction.", min=1, max=10_000)
    ] = 500,
    signing: Annotated[
        bool,
        typer.Option(
            "--signing",
            help="Rotate the OAuth token signing key instead (the old one stays published).",
        ),
    ] = False,
) -> None:
    """Re-encrypt every TOTP secret under the newest KEYSTILE_ENCRYPTION_KEYS key.

    Put the new key first and keep the old ones until this reports nothing
    left under them. Resumable, and safe while the service runs.

    With --signing: a new OAuth signing key signs from now on; the old one
    stays in /.well-known/jwks.json until the last token it signed expires.
    """
    if signing:
        _rotate_signing()
        return
    settings = load_settings()
    ring = settings.ring("encryption_keys")
    # Only the database: no sender, limiter or token codec is needed to reseal.
    db = Database(
        settings.database_url,
        pool_size=2,
        busy_timeout_seconds=settings.database_busy_timeout_seconds,
    )
    try:
        if settings.mode == "development":
            migrate.upgrade(db)
        else:
            migrate.check_schema(db)
        report = rotate_secrets(db, ring, batch_size=batch_size)
    finally:
        db.dispose()
    typer.echo(_format_rotation(report))
    if report.unopenable:
        kids = ", ".join(sorted(report.unopenable_kids))
        raise ConfigurationError(
            [
                f"KEYSTILE_ENCRYPTION_KEYS: {report.unopenable} TOTP secret(s) sealed under "
                f"key(s) {kids} open with no listed key; put the old key back after the new "
                "one and run `keystile keys rotate` again"
            ]
        )


def _rotate_signing() -> None:
    runtime = _runtime()
    try:
        runtime.prepare_database()
        key, published = anyio.run(runtime.oauth.signing.rotate)
    finally:
        runtime.close()
    typer.echo(
        f"signing key {key.kid} ({key.algorithm}) signs now; published: {', '.join(published)}"
    )


GrantOption = Annotated[
    list[str] | None,
    typer.Option(
        "--grant",
        help="A grant the client may use (repeatable): "
        + ", ".join(grants.BY_SHORT_NAME)
        + ", or a grant type URI. Default: all.",
    ),
]


@client_app.command("create")
def client_create(
    name: Annotated[str, typer.Argument(help="A name for the client (for you).")],
    grant: GrantOption = None,
    public: Annotated[
        bool, typer.Option("--public", help="No secret (a mobile or browser app).")
    ] = False,
    audience: Annotated[
        str | None, typer.Option(help="The aud of its access tokens (default: the service's).")
    ] = None,
    access_token_lifetime: Annotated[
        int | None, typer.Option(min=60, max=24 * 3600, help="Seconds.")
    ] = None,
    refresh_token_lifetime: Annotated[
        int | None, typer.Option(min=300, max=365 * 24 * 3600, help="Seconds.")
    ] = None,
) -> None:
    """Register an OAuth client; its secret is printed this once."""
    try:
        grant_types = [grants.parse_grant(item) for item in grant] if grant else list(grants.ALL)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--grant") from None
    runtime = _runtime()
    try:
        runtime.prepare_database()
        created = anyio.run(
            lambda: runtime.oauth.clients.create(
                name,
                grant_types=grant_types,
                public=public,
                audience=audience,
                access_token_lifetime=access_token_lifetime,
                refresh_token_lifetime=refresh_token_lifetime,
            )
        )
    finally:
        runtime.close()
    typer.echo(_format_new_client(created))


@client_app.command("list")
def client_list() -> None:
    """Registered OAuth clients (never a secret)."""
    runtime = _runtime()
    try:
        runtime.prepare_database()
        found = anyio.run(runtime.oauth.clients.list)
    finally:
        runtime.close()
    typer.echo(_format_clients(found))


@client_app.command("rotate-secret")
def client_rotate_secret(client_id: Annotated[str, typer.Argument()]) -> None:
    """A new secret for a confidential client (printed this once); the old one stops working."""
    runtime = _runtime()
    try:
        runtime.prepare_database()
        secret = anyio.run(runtime.oauth.clients.rotate_secret, client_id)
    finally:
        runtime.close()
    typer.echo(f"client_secret: {secret}")


@client_app.command("delete")
def client_delete(client_id: Annotated[str, typer.Argument()]) -> None:
    """Delete an OAuth client."""
    runtime = _runtime()
    try:
        runtime.prepare_database()
        anyio.run(runtime.oauth.clients.delete, client_id)
    finally:
        runtime.close()
    typer.echo(f"deleted client {client_id}")


def _format_new_client(created: NewClient) -> str:
    lines = [f"client_id: {created.client.client_id}"]
    if created.secret is not None:
        lines.append(f"client_secret: {created.secret}")
    else:
        lines.append("public client (no secret)")
    lines.append("grants: " + " ".join(created.client.grant_types))
    return "\n".join(lines)


def _format_clients(found: Sequence[ClientRow]) -> str:
    if not found:
        return "no clients"
    return "\n".join(
        f"{client.client_id}  {client.name}  "
        f"{'public' if client.secret_hash is None else 'confidential'}  "
        f"aud={client.audience}  grants={','.join(client.grant_types)}"
        for client in found
    )


def _read_password(password_stdin: bool) -> str:
    if password_stdin or not sys.stdin.isatty():
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


@user_app.command("create")
def user_create(
    email: Annotated[str, typer.Argument(help="The user's email address.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
) -> None:
    """Create a user with a password (prompted, or read from standard input)."""
    password = _read_password(password_stdin)
    runtime = _runtime()
    try:
        runtime.prepare_database()
        user = anyio.run(runtime.password.create_user, email, password)
    finally:
        runtime.close()
    typer.echo(f"created {user.email} ({user.id})")


@user_app.command("list")
def user_list(
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 100,
    offset: Annotated[int, typer.Option(min=0)] = 0,
) -> None:
    """List users, oldest first."""
    runtime = _runtime()
    try:
        runtime.prepare_database()

        async def fetch() -> list[User]:
            return await runtime.list_users(limit=limit, offset=offset)

        users = anyio.run(fetch)
    finally:
        runtime.close()
    typer.echo(_format_users(users))


EmailArgument = Annotated[str, typer.Argument(help="The user's email address.")]


@mfa_app.command("status")
def user_mfa_status(email: EmailArgument) -> None:
    """Show whether the user has TOTP, since when, and their unused recovery codes."""
    runtime = _runtime()
    try:
        runtime.prepare_database()

        async def read() -> tuple[User, MfaStatus]:
            return await runtime.mfa_status(email)

        user, status = anyio.run(read)
    finally:
        runtime.close()
    typer.echo(_format_mfa_status(user, status))


@mfa_app.command("reset")
def user_mfa_reset(email: EmailArgument) -> None:
    """Remove the user's second factor (TOTP and recovery codes), sign them out
    everywhere, audit it and tell the user. They sign in with the first factor
    alone and enrol again."""
    runtime = _runtime()
    try:
        runtime.prepare_database()

        async def reset() -> tuple[User, MfaReset]:
            done = await runtime.reset_mfa(email)
            await runtime.drain_deliveries()  # the notice goes out before the process ends
            return done

        user, done = anyio.run(reset)
    finally:
        runtime.close()
    typer.echo(_format_mfa_reset(user, done))


def _format_banner(settings: Settings, host: str, port: int, workers: int) -> str:
    where = settings.database_url.split("@")[-1]  # never print database credentials
    return (
        f"keystile: {settings.mode} mode, database {where}, "
        f"http://{host}:{port}{settings.route_prefix}, {workers} worker(s)"
    )


def _format_users(users: Sequence[User]) -> str:
    if not users:
        return "no users"
    lines = [f"{'id':36}  {'email':40}  created"]
    lines += [f"{u.id!s:36}  {u.email:40}  {u.created_at.isoformat()}" for u in users]
    return "\n".join(lines)


def _format_mfa_status(user: User, status: MfaStatus) -> str:
    lines = [f"user: {user.email} ({user.id})"]
    if status.totp_since is not None:
        lines.append(f"totp: active since {status.totp_since.isoformat()}")
    else:
        lines.append("totp: not active")
    codes = status.recovery_codes
    if codes is None:
        lines.append("recovery codes: none")
    else:
        generated = codes.generated_at.isoformat() if codes.generated_at else "unknown"
        lines.append(
            f"recovery codes: {codes.remaining} unused of {codes.total} (generated {generated})"
        )
    return "\n".join(lines)


def _format_mfa_reset(user: User, done: MfaReset) -> str:
    return (
        f"reset two-step verification of {user.email}: removed {done.authenticators} "
        f"authenticator(s) and {done.recovery_codes} recovery code(s), revoked "
        f"{done.sessions} session(s); the user was notified"
    )


def _format_rotation(report: RotationReport) -> str:
    line = f"re-encrypted {report.moved} TOTP secret(s) under key {report.kid}"
    if report.changed:
        line += f"; {report.changed} changed while running and were left as they were"
    return line


def _format_error(error: KeystileError) -> str:
    if isinstance(error, ConfigurationError):
        return "error: " + "; ".join(error.problems)
    if isinstance(error, InvalidRequestError) and error.fields:
        reasons = ", ".join(f"{name} {reason}" for name, reason in error.fields.items())
        return f"error: {error.message} ({reasons})"
    return f"error: {error.message}"


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point."""
    try:
        app(args=list(argv) if argv is not None else None, standalone_mode=False)
    except KeystileError as error:
        typer.echo(_format_error(error), err=True)
        sys.exit(1)
    except click.exceptions.Abort:
        typer.echo("error: aborted", err=True)
        sys.exit(1)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except click.exceptions.Exit as error:
        sys.exit(error.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
