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
from keystile.errors import ConfigurationError
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
from keystile.limits.rate import RateLimiter
from keystile.limits.redis import RedisRateLimiter
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
from keystile.store.users import UserStore
from keystile.strategies.attempts import AttemptGate
from keystile.strategies.audit_trail import AuditTrail
from keystile.strategies.otp.config import OtpConfig, configuration_problems
from keystile.strategies.otp.service import OtpService
from keystile.strategies.password.config import PasswordConfig
from keystile.strategies.password.service import PasswordService
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

    Raises:
        ConfigurationError: a key is missing or the database URL is unusable.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        extensions: Extensions | None = None,
    ) -> None:
        missing = settings.missing_keys()
        if missing:
            raise ConfigurationError([f"KEYSTILE_{name.upper()} is not set" for name in missing])
        invalid_rates = checks.rate_problems(settings)
        if invalid_rates:  # a zero rate cannot be enforced in any mode
            raise ConfigurationError([str(problem) for problem in invalid_rates])
        unsafe = [str(problem) for problem in checks.configuration_problems(settings)]
        refused = unsafe if settings.mode == "production" else []
        for problem in unsafe if settings.mode != "production" else []:
            # The `test` preset is the development and test-suite setting: no warning for it.
            if not problem.startswith("KEYSTILE_PASSWORD_HASH_PRESET"):
                logger.warning("unsafe configuration (refused in production): %s", problem)
        self.settings = settings
        self.extensions = extensions or Extensions()
        self.clock: Clock = clock or SystemClock()
        try:
            self.db = Database(
                settings.database_url,
                pool_size=settings.database_pool_size,
                busy_timeout_seconds=settings.database_busy_timeout_seconds,
            )
        except Exception as error:  # SQLAlchemy raises several types for a bad URL
            raise ConfigurationError([f"KEYSTILE_DATABASE_URL: {error}"]) from None
        exposed = checks.database_file_problem(settings)
        if exposed is not None and settings.mode == "production":
            self.db.dispose()
            raise ConfigurationError([str(exposed)])
        self.users = UserStore(self.db)
        self.tokens = TokenStore(self.db)
        self.audit = AuditStore(self.db)
        self.codec = TokenCodec(
            settings.ring("signing_keys"),
            issuer=settings.issuer,
            audience=settings.token_audience,
            leeway=timedelta(seconds=settings.token_leeway_seconds),
        )
        self.hashing_keys = settings.ring("hashing_keys")
        self.encryption_keys = settings.ring("encryption_keys")
        self.sessions = Sessions(
            codec=self.codec,
            tokens=self.tokens,
            clock=self.clock,
            lifetime=timedelta(seconds=settings.access_token_lifetime_seconds),
        )
        self.audit_trail = AuditTrail(
            self.audit,
            privacy=settings.audit_client_address,
            key=self.hashing_keys.current,
        )
        problems: list[str] = list(refused)  # every problem is reported in one error
        self.limiter = self._build_limiter(problems)
        self.sender = self.extensions.sender or self._build_sender(problems)
        self.mailbox = self.sender.mailbox if isinstance(self.sender, ConsoleSender) else None
        self.dispatcher = Dispatcher(self.sender)

        password_config = PasswordConfig(
            hash_preset=settings.password_hash_preset,
            registration_enabled=settings.password_registration_enabled,
        )
        password_rate = parse_rate(settings.password_sign_in_rate)
        password_guard = BruteForceGuard(
            [
                RateLimitProtection(
                    self.limiter,
                    {"sign_in": password_rate, "register": password_rate},
                    by_client_address=settings.rate_limit_by_client_address,
                    # The spraying defence: always on, whatever by_client_address says.
                    address_rates={"sign_in": parse_rate(settings.password_sign_in_address_rate)},
                ),
                *self.extensions.hooks,
            ]
        )
        self.password_hasher = PasswordHasher.from_preset(
            password_config.hash_preset,
            concurrency=settings.password_hash_concurrency,
            memory_budget_mib=settings.password_hash_memory_mb,
        )
        self.password = PasswordService(
            config=password_config,
            db=self.db,
            hasher=self.password_hasher,
            gate=self._gate("password", password_guard),
            audit=self.audit_trail,
            dispatcher=self.dispatcher,
            hashing_keys=self.hashing_keys,
            clock=self.clock,
            service_name=settings.service_name,
        )

        self.otp: OtpService | None = None
        if settings.otp_enabled:
            otp_config = OtpConfig(
                lifetime=timedelta(seconds=settings.otp_lifetime_seconds),
                length=settings.otp_length,
                characters=settings.otp_characters,
                case_sensitive=settings.otp_case_sensitive,
                single_use=settings.otp_single_use,
                registration_enabled=settings.otp_registration_enabled,
                max_attempts_per_code=settings.otp_max_attempts,
            )
            otp_guard = self._otp_guard()
            problems += configuration_problems(
                otp_config,
                guard=otp_guard,
                sender=self.sender,
                generator=self.extensions.otp_generator,
            )
            self.otp = OtpService(
                config=otp_config,
                db=self.db,
                gate=self._gate("otp", otp_guard),
                audit=self.audit_trail,
                dispatcher=self.dispatcher,
                hashing_keys=self.hashing_keys,
                clock=self.clock,
                generator=self.extensions.otp_generator,
                service_name=settings.service_name,
            )
        self.sign_in = SignInFlow(
            db=self.db,
            sessions=self.sessions,
            audit=self.audit_trail,
            clock=self.clock,
            password=self.password,
            otp=self.otp,
        )
        if problems:
            self.db.dispose()
            raise ConfigurationError(problems)

    def _build_limiter(self, problems: list[str]) -> RateLimiter:
        backend = self.settings.rate_limit_backend
        if backend == "memory":
            return MemoryRateLimiter()
        if backend == "redis":
            if not self.settings.redis_url:
                problems.append(
                    "KEYSTILE_REDIS_URL: required when KEYSTILE_RATE_LIMIT_BACKEND=redis"
                )
                return MemoryRateLimiter()
            try:
                return RedisRateLimiter(
                    self.settings.redis_url, prefix=self.settings.redis_key_prefix
                )
            except ValueError:  # redis-py's from_url names the accepted schemes
                problems.append(
                    "KEYSTILE_REDIS_URL: not a Redis URL; use redis://, rediss:// or unix://"
                )
                return MemoryRateLimiter()
        return DatabaseRateLimiter(self.db)

    def _build_sender(self, problems: list[str]) -> Sender:
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
            )
        if settings.sender == "webhook":
            if not settings.webhook_url:
                problems.append("KEYSTILE_WEBHOOK_URL: required when KEYSTILE_SENDER=webhook")
            return WebhookSender(
                settings.webhook_url or "http://127.0.0.1/",
                secret=settings.webhook_secret.get_secret_value()
                if settings.webhook_secret
                else None,
            )
        if settings.mode == "production" and settings.otp_enabled:
            problems.append(
                "KEYSTILE_SENDER: the console sender prints codes in clear and is for "
                "development only; choose smtp or webhook in production"
            )
        return ConsoleSender(DevMailbox(), clock=self.clock)

    def _gate(self, strategy: str, guard: BruteForceGuard) -> AttemptGate:
        return AttemptGate(strategy=strategy, guard=guard, audit=self.audit_trail, db=self.db)

    def _otp_guard(self) -> BruteForceGuard:
        settings = self.settings
        protections: list[Protection] = []
        if "rate_limit" in settings.otp_brute_force:
            protections.append(
                RateLimitProtection(
                    self.limiter,
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
                    self.audit,
                    max_failures=settings.audit_log_max_failures,
                    window=timedelta(seconds=settings.audit_log_window_seconds),
                )
            )
        protections.extend(self.extensions.hooks)
        return BruteForceGuard(protections)

    def prepare_database(self) -> None:
        """Development: migrate to the newest schema. Production: refuse an outdated one.

        Raises:
            SchemaOutdatedError: production mode and ``keystile db upgrade`` not run.
        """
        if self.settings.mode == "development":
            migrate.upgrade(self.db)
        else:
            migrate.check_schema(self.db)

    def close(self) -> None:
        """Release pooled connections (for callers without an event loop, like the CLI)."""
        self.password_hasher.close()
        self.db.dispose()

    async def aclose(self) -> None:
        """Finish deliveries in flight, then release the limiter and the database."""
        await self.dispatcher.drain()
        await self.password_hasher.aclose()
        await self.limiter.aclose()
        if isinstance(self.sender, WebhookSender):
            await self.sender.aclose()
        self.db.dispose()
