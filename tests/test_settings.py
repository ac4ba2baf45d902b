"""Settings: environment, TOML file, key lists, development keys and production refusal."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from pydantic import ValidationError

from keystile.errors import ConfigurationError
from keystile.settings import Settings, load_settings

KEY_A, KEY_B = "a" * 43, "b" * 43


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("KEYSTILE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_defaults_are_the_embedded_development_setup() -> None:
    """No configuration at all: development mode on a local SQLite file."""
    settings = load_settings()
    assert settings.mode == "development"
    assert settings.database_url == "sqlite:///keystile.db"
    assert settings.access_token_lifetime_seconds == 3600


def test_key_lists_from_the_environment_keep_their_order(monkeypatch: pytest.MonkeyPatch) -> None:
    """Comma-separated and JSON lists both work; the first key is the current one."""
    monkeypatch.setenv("KEYSTILE_SIGNING_KEYS", f"{KEY_A}, {KEY_B}")
    monkeypatch.setenv("KEYSTILE_HASHING_KEYS", json.dumps([KEY_B, KEY_A]))
    monkeypatch.setenv("KEYSTILE_ENCRYPTION_KEYS", KEY_A)
    settings = load_settings()
    assert [k.get_secret_value() for k in settings.signing_keys] == [KEY_A, KEY_B]
    assert [k.get_secret_value() for k in settings.hashing_keys] == [KEY_B, KEY_A]
    assert len(settings.ring("signing_keys")) == 2
    assert KEY_A not in repr(settings)


def test_production_refuses_to_start_and_names_every_missing_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Production mode generates nothing; the error lists each missing variable."""
    monkeypatch.setenv("KEYSTILE_MODE", "production")
    monkeypatch.setenv("KEYSTILE_SIGNING_KEYS", KEY_A)
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    problems = "\n".join(caught.value.problems)
    assert "KEYSTILE_HASHING_KEYS is not set" in problems
    assert "KEYSTILE_ENCRYPTION_KEYS is not set" in problems
    assert "SIGNING" not in problems
    assert not Path(".keystile-keys.json").exists()


def test_development_keys_are_generated_once_owner_only(tmp_path: Path) -> None:
    """The key file is created with mode 0600 and reused by later loads."""
    first = load_settings()
    path = tmp_path / ".keystile-keys.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    second = load_settings()
    assert first.signing_keys == second.signing_keys
    assert first.signing_keys != first.hashing_keys


def test_a_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    """Keys that others can read are not keys: say how to fix it."""
    load_settings()
    path = tmp_path / ".keystile-keys.json"
    path.chmod(0o644)
    with pytest.raises(ConfigurationError, match="chmod 600"):
        load_settings()


def test_short_keys_and_bad_values_are_refused_with_the_option_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each invalid value is reported as KEYSTILE_<NAME>."""
    monkeypatch.setenv("KEYSTILE_SIGNING_KEYS", "short")
    monkeypatch.setenv("KEYSTILE_MODE", "staging")
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    names = " ".join(caught.value.problems)
    assert "KEYSTILE_SIGNING_KEYS" in names
    assert "KEYSTILE_MODE" in names


def test_toml_file_is_read_and_environment_wins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A TOML file configures; a variable overrides the same option."""
    config = tmp_path / "keystile.toml"
    config.write_text('issuer = "from-file"\naccess_token_lifetime_seconds = 600\n')
    settings = load_settings(config)
    assert settings.issuer == "from-file"
    monkeypatch.setenv("KEYSTILE_ISSUER", "from-env")
    settings = load_settings(config)
    assert settings.issuer == "from-env"
    assert settings.access_token_lifetime_seconds == 600


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    """Naming a file that does not exist fails with its path."""
    with pytest.raises(ConfigurationError, match="does not exist"):
        load_settings(tmp_path / "missing.toml")


def test_settings_are_immutable() -> None:
    """Settings are built once at the edge and never changed."""
    settings = load_settings()
    with pytest.raises(ValidationError):
        settings.issuer = "changed"  # type: ignore[misc]
    assert isinstance(settings, Settings)
