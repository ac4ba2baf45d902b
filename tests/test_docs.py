"""The README's configuration reference matches the Settings object."""

from __future__ import annotations

import re
from pathlib import Path

from keystile.settings import Settings

README = (Path(__file__).parent.parent / "README.md").read_text()


def test_every_setting_is_documented_and_nothing_else() -> None:
    """Each field appears as KEYSTILE_<NAME> in the README, and each documented name exists."""
    fields = {f"KEYSTILE_{name.upper()}" for name in Settings.model_fields}
    documented = set(re.findall(r"`(KEYSTILE_[A-Z_]+)`", README)) - {"KEYSTILE_CONFIG_FILE"}
    assert fields - documented == set()
    assert documented - fields == set()
