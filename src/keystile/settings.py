"""The Settings object: one immutable, typed configuration built at the edge.

Read from ``KEYSTILE_*`` environment variables and, optionally, a TOML file
(``KEYSTILE_CONFIG_FILE`` or ``load_settings(config_file=...)``); environment
variables win over the file. Key lists accept a JSON list or a comma-separated
string and are ordered newest first: the first key signs, hashes and seals,
every key still verifies.

In ``development`` mode, missing keys are generated once and kept in
``keys_file`` (created with mode 0600). In ``production`` mode nothing is
generated: :func:`load_settings` refuses and names each missing variable.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from keystile.crypto.keyring import MIN_KEY_LENGTH, KeyRing
from keystile.errors import ConfigurationError

KEY_FIELDS = ("signing_keys", "hashing_keys", "encryption_keys")

_config_file: ContextVar[Path | None] = ContextVar("keystile_config_file", default=None)

KeyList = Annotated[tuple[SecretStr, ...], NoDecode]
#: A rate such as ``5/15m`` (limit per window; units s, m, h, d).
RateText = Annotated[str, Field(pattern=r"^\s*[0-9]+/[0-9]+[smhd]\s*$")]


class Settings(BaseSettings):
    """Every option of a Keystile deployment. Immutable; build once, pass the fields down."""

    model_config = SettingsConfigDict(
        env_prefix="KEYSTILE_", frozen=True, extra="forbid", validate_default=True
    )

    mode: Literal["development", "production"] = "development"
    database_url: str = "sqlite:///keystile.db"
    database_pool_size: int = Field(default=10, ge=1, le=200)
    database_busy_timeout_seconds: float = Field(default=5.0, gt=0, le=120)

    signing_keys: KeyList = ()
    hashing_keys: KeyList = ()
    encryption_keys: KeyList = ()
    keys_file: Path = Path(".keystile-keys.json")

    issuer: str = Field(default="keystile", min_length=1, max_length=200)
    token_audience: str = Field(default="keystile", min_length=1, max_length=200)
    token_leeway_seconds: int = Field(default=0, ge=0, le=300)
    access_token_lifetime_seconds: int = Field(default=3600, ge=60, le=30 * 24 * 3600)
    session_cache_seconds: float = Field(default=1.0, ge=0, le=1)
    mfa_token_lifetime_seconds: int = Field(default=300, ge=30, le=300)
    mfa_policy: Literal["optional", "required"] = "optional"

    password_hash_preset: Literal["rfc9106_low_memory", "rfc9106_high_memory", "test"] = (
        "rfc9106_low_memory"  # noqa: S105 (a preset name)
    )
    password_registration_enabled: bool = False
    #: Hashes at once per process; 0 = automatic (the memory budget over one hash's memory).
    password_hash_concurrency: int = Field(default=0, ge=0, le=1024)
    #: MiB that concurrent hashes may hold, for the automatic concurrency.
    password_hash_memory_mb: int = Field(default=256, ge=1, le=1024 * 1024)

    password_sign_in_rate: RateText = "10/10m"  # noqa: S105 (a rate, not a password)
    #: Password sign-ins per client address (IPv6 per /64), whatever the identity: spraying.
    password_sign_in_address_rate: RateText = "50/10m"  # noqa: S105 (a rate, not a password)

    max_body_bytes: int = Field(default=64 * 1024, ge=1024, le=16 * 1024 * 1024)

    route_prefix: str = Field(default="/auth", pattern=r"^(/[A-Za-z0-9_\-]+)*$")
    #: ``/docs``, ``/redoc`` and ``/openapi.json`` of the standalone service; ``None``:
    #: on in development, off in production (a map of the API is a gift to an attacker).
    docs_enabled: bool | None = None
    service_name: str = Field(default="Keystile", min_length=1, max_length=100)

    #: The hosted pages (sign-in, TOTP setup and verify, recovery codes, sign-out).
    pages_enabled: bool = True
    #: Put in front of every page path (``/sign-in``, ``/auth/totp-setup`` …).
    pages_prefix: str = Field(default="", pattern=r"^(/[A-Za-z0-9_\-]+)*$")
    #: One language for every page (``en``, ``de``); ``None`` follows ``Accept-Language``.
    pages_language: str | None = Field(default=None, pattern=r"^[a-z]{2,3}(_[A-Z]{2})?$")

    otp_enabled: bool = True
    otp_lifetime_seconds: int = Field(default=600, ge=1)
    otp_length: int = Field(default=6, ge=1, le=32)
    otp_characters: Literal[
        "unambiguous_uppercase", "unambiguous_alphanumeric", "uppercase_letters_only", "digits_only"
    ] = "unambiguous_uppercase"
    otp_case_sensitive: bool = False
    otp_single_use: bool = True
    otp_registration_enabled: bool = False
    otp_max_attempts: int = Field(default=5, ge=1, le=100)
    otp_brute_force: Annotated[tuple[Literal["rate_limit", "audit_log"], ...], NoDecode] = (
        "rate_limit",
    )
    otp_request_rate: RateText = "5/15m"
    otp_sign_in_rate: RateText = "5/10m"

    totp_enabled: bool = True
    totp_algorithm: Literal["SHA1", "SHA256", "SHA512"] = "SHA1"
    totp_digits: int = Field(default=6, ge=1, le=10)
    totp_period_seconds: int = Field(default=30, ge=1)
    totp_window: int = Field(default=1, ge=0)
    #: The name authenticator apps show; ``None`` uses ``service_name``.
    totp_issuer: str | None = Field(default=None, min_length=1, max_length=100)
    totp_rate: RateText = "5/5m"
    totp_max_failures_per_day: int = Field(default=20, ge=1, le=100)
    recovery_codes_enabled: bool = True
    recovery_code_batch_size: int = Field(default=10, ge=1, le=100)
    recovery_code_length: int = Field(default=16, ge=1, le=64)
    recovery_code_mode: Literal["batch", "rotate_on_use", "single_code"] = "batch"
    recovery_code_storage: Literal["keyed", "argon2"] = "keyed"
    recovery_code_rate: RateText = "5/15m"

    #: OAuth 2.0 (keystile.oauth): the JWS algorithm of new signing keys, and token lifetimes
    #: a client gets unless `keystile client create` says otherwise.
    oauth_signing_algorithm: Literal["ES256", "EdDSA", "RS256"] = "ES256"
    oauth_access_token_lifetime_seconds: int = Field(default=3600, ge=60, le=24 * 3600)
    oauth_refresh_token_lifetime_seconds: int = Field(
        default=30 * 24 * 3600, ge=300, le=365 * 24 * 3600
    )

    rate_limit_backend: Literal["memory", "database", "redis"] = "database"
    rate_limit_by_client_address: bool = False
    redis_url: str | None = None
    redis_key_prefix: str = Field(default="keystile:rl:", min_length=1, max_length=100)
    audit_log_max_failures: int = Field(default=5, ge=1)
    audit_log_window_seconds: int = Field(default=300, ge=1)
    audit_client_address: Literal["none", "hash", "truncate", "exclude"] = "hash"

    sender: Literal["console", "smtp", "webhook"] = "console"
    #: Messages that may wait for a free send worker; one more is audited as a failed delivery.
    send_queue_size: int = Field(default=1000, ge=1, le=1_000_000)
    #: Deliveries that run at once (and the SMTP sender's threads).
    send_workers: int = Field(default=4, ge=1, le=64)
    smtp_host: str = "localhost"
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_security: Literal["none", "starttls", "tls"] = "starttls"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = "keystile@localhost"
    smtp_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None

    @field_validator("otp_brute_force", mode="before")
    @classmethod
    def _split_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("totp_algorithm", mode="before")
    @classmethod
    def _upper_algorithm(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator(*KEY_FIELDS, mode="before")
    @classmethod
    def _split_keys(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator(*KEY_FIELDS)
    @classmethod
    def _check_key_length(cls, value: tuple[SecretStr, ...]) -> tuple[SecretStr, ...]:
        for key in value:
            if len(key.get_secret_value().encode()) < MIN_KEY_LENGTH:
                raise ValueError(
                    f"every key must be at least {MIN_KEY_LENGTH} bytes; generate one with "
                    "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
                )
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = _config_file.get()
        if config_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config_file))
        return tuple(sources)

    def ring(self, name: Literal["signing_keys", "hashing_keys", "encryption_keys"]) -> KeyRing:
        """The key ring for one of the key fields.

        Raises:
            ConfigurationError: the field holds no key.
        """
        keys: tuple[SecretStr, ...] = getattr(self, name)
        if not keys:
            raise ConfigurationError([_missing_key_problem(name)])
        return KeyRing(key.get_secret_value() for key in keys)

    def missing_keys(self) -> list[str]:
        """The key fields that hold no key."""
        return [name for name in KEY_FIELDS if not getattr(self, name)]


def _missing_key_problem(name: str) -> str:
    return (
        f"KEYSTILE_{name.upper()} is not set: give at least one key of {MIN_KEY_LENGTH}+ "
        "random bytes (newest first, comma-separated)"
    )


@contextmanager
def _reading_config_file(path: Path | None) -> Iterator[None]:
    token = _config_file.set(path)
    try:
        yield
    finally:
        _config_file.reset(token)


def _problems(error: ValidationError) -> list[str]:
    problems = []
    for item in error.errors():
        name = ".".join(str(part) for part in item["loc"])
        problems.append(f"KEYSTILE_{name.upper()}: {item['msg']}")
    return problems


def load_settings(config_file: Path | str | None = None, **overrides: Any) -> Settings:
    """Build the Settings from the environment, an optional TOML file and ``overrides``.

    In development mode, missing keys come from (or are generated into) ``keys_file``.

    Raises:
        ConfigurationError: invalid values, or keys missing in production mode.
    """
    if config_file is None and os.environ.get("KEYSTILE_CONFIG_FILE"):
        config_file = os.environ["KEYSTILE_CONFIG_FILE"]
    path = Path(config_file) if config_file is not None else None
    if path is not None and not path.is_file():
        raise ConfigurationError([f"configuration file {path} does not exist"])
    try:
        with _reading_config_file(path):
            settings = Settings(**overrides)
    except ValidationError as error:
        raise ConfigurationError(_problems(error)) from None
    missing = settings.missing_keys()
    if not missing:
        return settings
    if settings.mode == "production":
        raise ConfigurationError([_missing_key_problem(name) for name in missing])
    stored = _development_keys(settings.keys_file)
    return settings.model_copy(update={name: (SecretStr(stored[name]),) for name in missing})


def _development_keys(path: Path) -> dict[str, str]:
    """Read the development key file, creating it (owner-only) on first use."""
    if path.exists():
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise ConfigurationError(
                [f"{path} is readable by other users (mode {mode:o}): run `chmod 600 {path}`"]
            )
        data = json.loads(path.read_text())
        if not isinstance(data, dict) or not all(
            isinstance(data.get(name), str) for name in KEY_FIELDS
        ):
            raise ConfigurationError([f"{path} is not a Keystile key file: remove it"])
        return {name: str(data[name]) for name in KEY_FIELDS}
    keys = {name: secrets.token_urlsafe(32) for name in KEY_FIELDS}
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        # Another process created it first; use its keys so both agree.
        return _development_keys(path)
    with os.fdopen(fd, "w") as handle:
        json.dump(keys, handle)
    return keys
