"""The composition root: builds every service of a deployment from one Settings object.

Used by the web app factory and the CLI alike, so both run the same objects.
Nothing here decides anything; it only wires.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from keystile import checks
from keystile.clock import Clock, SystemClock
from keystile.crypto.passwords import PasswordHasher
from keystile.errors import ConfigurationError, NotFoundError
from keystile.flows import mfa_admin
from keystile.flows.enrolment import EnrolmentFlow
from keystile.flows.mfa_admin import MfaReset, MfaStatus
from keystile.flows.mfa_tokens import MfaTokens
from keystile.flows.notices import Notices
from keystile.flows.sessions import Sessions
from keystile.flows.sign_in import SignInFlow
from keystile.limits.database import DatabaseRateLimiter
from keystile.limits.memory import MemoryRateLimiter
from keystile.limits.protection import (
    AuditLogProtection,
    BruteForceGuard,
    HookProtection,
    Protection,
    RateLimitProtection,
    parse_rate,
)
from keystile.limits.rate import Rate, RateLimiter
from keystile.limits.redis import RedisRateLimiter
from keystile.oauth.wiring import build_oauth
from keystile.senders.base import Sender
from keystile.senders.console import ConsoleSender
from keystile.senders.dispatch import Dispatcher
from keystile.senders.mailbox import DevMailbox
from keystile.senders.smtp import SmtpSender
from keystile.senders.webhook import WebhookSender
from keystile.settings import Settings
from keystile.store import migrate
from keystile.store.audit import AuditStore
from keystile.store.database import Database
from keystile.store.tokens import TokenStore
from keystile.store.users import User, UserStore
from keystile.strategies.attempts import AttemptGate, parse_identity
from keystile.strategies.audit_trail import AuditTrail
from keystile.strategies.otp.service import OtpService
from keystile.strategies.password.config import PasswordConfig
from keystile.strategies.password.service import PasswordService
from keystile.strategies.recovery_code.config import (
    config_from_settings as recovery_config_from_settings,
)
from keystile.strategies.recovery_code.service import RecoveryCodeService
from keystile.strategies.totp.config import config_from_settings
from keystile.strategies.totp.enrolment import TotpEnrolment
from keystile.strategies.totp.service import TotpService
from keystile.tokens import TokenCodec

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Extensions:
    """What a library user plugs in that settings cannot express.

    Attributes:
        sender: replaces the sender chosen by ``KEYSTILE_SENDER``.
        otp_generator: a custom code generator (see
            :class:`~keystile.strategies.otp.config.CodeGenerator`); the entropy
            check is skipped and the responsibility moves to its author.
        hooks: custom brute-force decisions, added to every strategy's guard;
            each sees the :class:`~keystile.limits.protection.Attempt` (strategy,
            action, identity, address, time) and allows or denies.
    """

    sender: Sender | None = None
    otp_generator: object | None = None
    hooks: Sequence[HookProtection] = field(default_factory=tuple)


class Runtime:
    """Every service of one deployment, wired from ``settings``.

    The public surface is what an application or an operator uses: the
    sign-in flow (:attr:`sign_in`), the strategies' own actions (:attr:`otp`,
    :attr:`password`), sessions (:attr:`sessions`), and the administrative
    methods below. The collaborators (database, stores, limiter, sender,
    keys) are private; tests reach them through :mod:`keystile.testing`.

    Raises:
        ConfigurationError: every problem of the configuration at once (see
            :func:`keystile.checks.startup_problems`), or an unusable database URL.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        extensions: Extensions | None = None,
        workers: int = 1,
    ) -> None:
        extensions = extensions or Extensions()
        problems = checks.startup_problems(
            settings,
            hooks=extensions.hooks,
            sender_given=extensions.sender is not None,
            otp_generator=extensions.otp_generator,
            workers=workers,
        )
        if problems:  # refused before anything is built, so nothing is left open
            raise ConfigurationError(problems)
        for warning in checks.development_warnings(settings, workers=workers):
            logger.warning("unsafe configuration (refused in production): %s", warning)
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self._extensions = extensions
        try:
            self._db = Database(
                settings.database_url,
                pool_size=settings.database_pool_size,
                busy_timeout_seconds=settings.database_busy_timeout_seconds,
            )
        except Exception as error:  # SQLAlchemy raises several types for a bad URL
            raise ConfigurationError([f"KEYSTILE_DATABASE_URL: {error}"]) from None
        db = self._db
        self._users = UserStore(db)
        self._tokens = TokenStore(db)
        self._audit = AuditStore(db)
        self._hashing_keys = settings.ring("hashing_keys")
        codec = TokenCodec(
            settings.ring("signing_keys"),
            issuer=settings.issuer,
            audience=settings.token_audience,
            leeway=timedelta(seconds=settings.token_leeway_seconds),
        )
        self.sessions = Sessions(
            codec=codec,
            tokens=self._tokens,
            clock=self.clock,
            lifetime=timedelta(seconds=settings.access_token_lifetime_seconds),
            cache_ttl=timedelta(seconds=settings.session_cache_seconds),
        )
        self._audit_trail = AuditTrail(
            self._audit, privacy=settings.audit_client_address, key=self._hashing_keys.current
        )
        self._limiter = self._build_limiter()
        self._sender = extensions.sender or self._build_sender()
        self.mailbox = self._sender.mailbox if isinstance(self._sender, ConsoleSender) else None
        self._dispatcher = Dispatcher(
            self._sender, queue_size=settings.send_queue_size, workers=settings.send_workers
        )
        self._hasher = PasswordHasher.from_preset(
            settings.password_hash_preset,
            concurrency=settings.password_hash_concurrency,
            memory_budget_mib=settings.password_hash_memory_mb,
        )
        self.password = PasswordService(
            config=PasswordConfig(
                hash_preset=settings.password_hash_preset,
                registration_enabled=settings.password_registration_enabled,
            ),
            db=db,
            hasher=self._hasher,
            gate=self._gate("password", self._password_guard()),
            audit=self._audit_trail,
            dispatcher=self._dispatcher,
            hashing_keys=self._hashing_keys,
            clock=self.clock,
            service_name=settings.service_name,
        )
        self.otp: OtpService | None = None
        if settings.otp_enabled:
            self.otp = OtpService(
                config=checks.otp_config(settings),
                db=db,
                gate=self._gate("otp", self._otp_guard()),
                audit=self._audit_trail,
                dispatcher=self._dispatcher,
                hashing_keys=self._hashing_keys,
                clock=self.clock,
                generator=extensions.otp_generator,
                service_name=settings.service_name,
            )
        self.recovery_codes: RecoveryCodeService | None = None
        if settings.recovery_codes_enabled:
            recovery_config = recovery_config_from_settings(settings)
            self.recovery_codes = RecoveryCodeService(
                config=recovery_config,
                hasher=self._hasher,
                db=db,
                gate=self._gate(
                    "recovery_code", self._per_user_guard(parse_rate(recovery_config.rate))
                ),
                hashing_keys=self._hashing_keys,
                clock=self.clock,
            )
        self.totp: TotpService | None = None
        self.totp_enrolment: TotpEnrolment | None = None
        self.enrolment: EnrolmentFlow | None = None
        if settings.totp_enabled:
            totp_config = config_from_settings(settings)
            # One gate for verify, step-up and enrolment: one per-user TOTP limit.
            totp_gate = self._gate("totp", self._totp_guard(parse_rate(totp_config.rate)))
            encryption_keys = settings.ring("encryption_keys")
            self.totp = TotpService(
                config=totp_config, gate=totp_gate, encryption_keys=encryption_keys
            )
            self.totp_enrolment = TotpEnrolment(
                config=totp_config,
                db=db,
                gate=totp_gate,
                audit=self._audit_trail,
                dispatcher=self._dispatcher,
                encryption_keys=encryption_keys,
                hashing_keys=self._hashing_keys,
                clock=self.clock,
                service_name=settings.service_name,
            )
            self.enrolment = EnrolmentFlow(
                db=db, totp=self.totp_enrolment, recovery=self.recovery_codes
            )
        self.notices = Notices(
            dispatcher=self._dispatcher,
            audit=self._audit_trail,
            clock=self.clock,
            service_name=settings.service_name,
        )
        mfa_tokens = MfaTokens(
            hashing_keys=self._hashing_keys,
            lifetime=timedelta(seconds=settings.mfa_token_lifetime_seconds),
        )
        self.sign_in = SignInFlow(
            db=db,
            sessions=self.sessions,
            audit=self._audit_trail,
            clock=self.clock,
            password=self.password,
            otp=self.otp,
            totp=self.totp,
            recovery=self.recovery_codes,
            totp_enrolment=self.totp_enrolment,
            enrolment=self.enrolment,
            mfa_tokens=mfa_tokens,
            policy=settings.mfa_policy,
            notices=self.notices,
        )
        self.oauth, self.mfa_api = build_oauth(
            settings,
            db=db,
            clock=self.clock,
            sessions=self.sessions,
            sign_in=self.sign_in,
            mfa_tokens=mfa_tokens,
            otp=self.otp,
            totp_enrolment=self.totp_enrolment,
            recovery=self.recovery_codes,
        )

    def _build_limiter(self) -> RateLimiter:
        settings = self.settings
        if settings.rate_limit_backend == "memory":
            return MemoryRateLimiter()
        if settings.rate_limit_backend == "redis" and settings.redis_url:
            return RedisRateLimiter(settings.redis_url, prefix=settings.redis_key_prefix)
        return DatabaseRateLimiter(self._db)

    def _build_sender(self) -> Sender:
        settings = self.settings
        if settings.sender == "smtp":
            return SmtpSender(
                host=settings.smtp_host,
                port=settings.smtp_port,
                from_address=settings.smtp_from,
                security=settings.smtp_security,
                username=settings.smtp_username,
                password=(
                    settings.smtp_password.get_secret_value() if settings.smtp_password else None
                ),
                timeout=settings.smtp_timeout_seconds,
                threads=settings.send_workers,
            )
        if settings.sender == "webhook" and settings.webhook_url:
            secret = settings.webhook_secret
            return WebhookSender(
                settings.webhook_url, secret=secret.get_secret_value() if secret else None
            )
        return ConsoleSender(DevMailbox(), clock=self.clock)

    def _gate(self, strategy: str, guard: BruteForceGuard) -> AttemptGate:
        return AttemptGate(strategy=strategy, guard=guard, audit=self._audit_trail, db=self._db)

    def _password_guard(self) -> BruteForceGuard:
        settings = self.settings
        rate = parse_rate(settings.password_sign_in_rate)
        return BruteForceGuard(
            [
                RateLimitProtection(
                    self._limiter,
                    {"sign_in": rate, "register": rate},
                    by_client_address=settings.rate_limit_by_client_address,
                    # The spraying defence: always on, whatever by_client_address says.
                    address_rates={"sign_in": parse_rate(settings.password_sign_in_address_rate)},
                ),
                *self._extensions.hooks,
            ]
        )

    def _per_user_guard(self, rate: Rate) -> BruteForceGuard:
        # A second factor's limit: one bucket per user across every action of the
        # strategy (second step, step-up, enrolment), all counted as "verify".
        protection = RateLimitProtection(self._limiter, {"verify": rate})
        return BruteForceGuard([protection, *self._extensions.hooks])

    def _totp_guard(self, rate: Rate) -> BruteForceGuard:
        # The rate limits bursts; failures are also capped per day, so a six-digit code
        # holds against patient guessing (the odds are checked at start-up). Both
        # count inside the attempt's transaction with the database backends.
        per_day = AuditLogProtection(
            self._audit,
            max_failures=self.settings.totp_max_failures_per_day,
            window=timedelta(days=1),
            protected=frozenset({"verify"}),
            counted=frozenset({"verify", "step_up", "confirm_setup"}),
        )
        guard = self._per_user_guard(rate)
        return BruteForceGuard([*guard.protections, per_day])

    def _otp_guard(self) -> BruteForceGuard:
        settings = self.settings
        protections: list[Protection] = []
        if "rate_limit" in settings.otp_brute_force:
            protections.append(
                RateLimitProtection(
                    self._limiter,
                    {
                        "request": parse_rate(settings.otp_request_rate),
                        "sign_in": parse_rate(settings.otp_sign_in_rate),
                    },
                    by_client_address=settings.rate_limit_by_client_address,
                )
            )
        if "audit_log" in settings.otp_brute_force:
            protections.append(
                AuditLogProtection(
                    self._audit,
                    max_failures=settings.audit_log_max_failures,
                    window=timedelta(seconds=settings.audit_log_window_seconds),
                )
            )
        protections.extend(self._extensions.hooks)
        return BruteForceGuard(protections)

    # Administration: what the CLI and an operator's scripts use.

    async def create_user(self, email: str, *, password: str | None = None) -> User:
        """Create a user, with a password or none (a passwordless account).

        Raises:
            InvalidRequestError: a malformed email or an unacceptable password.
            AlreadyRegisteredError: the email is taken.
        """
        if password is not None:
            return await self.password.create_user(email, password)
        return await self._users.create(
            parse_identity(email), password_hash=None, now=self.clock.now()
        )

    async def find_user(self, email: str) -> User | None:
        """The user with ``email`` (any spelling of it), or ``None``.

        Raises:
            InvalidRequestError: a malformed email.
        """
        return await self._users.get_by_email(parse_identity(email))

    async def list_users(self, *, limit: int = 100, offset: int = 0) -> list[User]:
        """Users in order of creation."""
        return await self._users.list(limit=limit, offset=offset)

    async def mfa_status(self, email: str) -> tuple[User, MfaStatus]:
        """The user with ``email`` and their second factors (what an operator may see).

        Raises:
            InvalidRequestError: a malformed email.
            NotFoundError: no user has it.
        """
        user = await self._existing_user(email)
        return user, await mfa_admin.status(self._db, user)

    async def reset_mfa(self, email: str) -> tuple[User, MfaReset]:
        """Remove the second factor of the user with ``email``, sign them out everywhere,
        audit it and tell them (see :func:`keystile.flows.mfa_admin.reset`).

        Raises:
            InvalidRequestError: a malformed email.
            NotFoundError: no user has it.
        """
        user = await self._existing_user(email)
        done = await mfa_admin.reset(
            self._db,
            self._audit_trail,
            self._dispatcher,
            self.clock,
            user=user,
            service_name=self.settings.service_name,
        )
        self.sessions.forget_user(user.subject)
        return user, done

    async def _existing_user(self, email: str) -> User:
        user = await self.find_user(email)
        if user is None:
            raise NotFoundError("No user has this email address.")
        return user

    async def purge(self, *, audit_days: int | None = None) -> Purged:
        """Delete expired codes and tokens, limiter rows older than a day and, with
        ``audit_days``, audit events older than that many days."""
        now = self.clock.now()
        expired = await self._tokens.purge_expired(now=now)
        hits = await DatabaseRateLimiter(self._db).purge(before=now - timedelta(days=1))
        events = 0
        if audit_days is not None:
            events = await self._audit.purge(before=now - timedelta(days=audit_days))
        return Purged(tokens=expired, limiter_hits=hits, audit_events=events)

    def upgrade_database(self) -> tuple[str | None, str | None]:
        """Migrate to the newest schema; the revisions before and after."""
        before = migrate.current_revision(self._db)
        migrate.upgrade(self._db)
        return before, migrate.current_revision(self._db)

    def prepare_database(self) -> None:
        """Development: migrate to the newest schema. Production: refuse an outdated one.

        Raises:
            SchemaOutdatedError: production mode and ``keystile db upgrade`` not run.
        """
        if self.settings.mode == "development":
            migrate.upgrade(self._db)
        else:
            migrate.check_schema(self._db)

    async def drain_deliveries(self, seconds: float = 10.0) -> None:
        """Wait (up to ``seconds``) for the messages being sent in the background."""
        await self._dispatcher.drain(seconds)

    def close(self) -> None:
        """Release pooled connections (for callers without an event loop, like the CLI)."""
        self._hasher.close()
        self._db.dispose()

    async def aclose(self) -> None:
        """Finish deliveries in flight, then release the limiter, the sender and the database."""
        await self._dispatcher.aclose()
        await self._hasher.aclose()
        await self._limiter.aclose()
        if self._extensions.sender is None:  # a sender passed in is its owner's to close
            await self._sender.aclose()
        self._db.dispose()


@dataclass(frozen=True, slots=True)
class Purged:
    """How many rows :meth:`Runtime.purge` deleted."""

    tokens: int
    limiter_hits: int
    audit_events: int
