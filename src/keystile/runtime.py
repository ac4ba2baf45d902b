"""The composition root: builds every service of a deployment from one Settings object.

Used by the web app factory and the CLI alike, so both run the same objects.
Nothing here decides anything; it only wires.
"""

from __future__ import annotations

from datetime import timedelta

from keystile.clock import Clock, SystemClock
from keystile.crypto.passwords import PasswordHasher
from keystile.errors import ConfigurationError
from keystile.flows.sessions import Sessions
from keystile.settings import Settings
from keystile.store import migrate
from keystile.store.audit import AuditStore
from keystile.store.database import Database
from keystile.store.tokens import TokenStore
from keystile.store.users import UserStore
from keystile.strategies.password.config import PasswordConfig
from keystile.strategies.password.service import PasswordService
from keystile.tokens import TokenCodec


class Runtime:
    """Every service of one deployment, wired from ``settings``.

    Raises:
        ConfigurationError: a key is missing or the database URL is unusable.
    """

    def __init__(self, settings: Settings, *, clock: Clock | None = None) -> None:
        missing = settings.missing_keys()
        if missing:
            raise ConfigurationError([f"KEYSTILE_{name.upper()} is not set" for name in missing])
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        try:
            self.db = Database(
                settings.database_url,
                pool_size=settings.database_pool_size,
                busy_timeout_seconds=settings.database_busy_timeout_seconds,
            )
        except Exception as error:  # SQLAlchemy raises several types for a bad URL
            raise ConfigurationError([f"KEYSTILE_DATABASE_URL: {error}"]) from None
        self.users = UserStore(self.db)
        self.tokens = TokenStore(self.db)
        self.audit = AuditStore(self.db)
        self.codec = TokenCodec(settings.ring("signing_keys"), issuer=settings.issuer)
        self.hashing_keys = settings.ring("hashing_keys")
        self.encryption_keys = settings.ring("encryption_keys")
        self.sessions = Sessions(
            codec=self.codec,
            tokens=self.tokens,
            clock=self.clock,
            lifetime=timedelta(seconds=settings.access_token_lifetime_seconds),
        )
        password_config = PasswordConfig(
            hash_preset=settings.password_hash_preset,
            registration_enabled=settings.password_registration_enabled,
        )
        self.password = PasswordService(
            config=password_config,
            users=self.users,
            hasher=PasswordHasher.from_preset(password_config.hash_preset),
            sessions=self.sessions,
            clock=self.clock,
        )

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
        """Release pooled connections."""
        self.db.dispose()
