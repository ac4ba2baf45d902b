"""The public API is exactly what ``keystile.__all__`` names."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import keystile


def test_all_names_are_importable_and_sorted() -> None:
    """Every name in ``__all__`` exists, and the list is kept sorted so diffs stay readable."""
    for name in keystile.__all__:
        assert hasattr(keystile, name), name
    assert list(keystile.__all__) == sorted(keystile.__all__)


def test_nothing_public_is_left_out_of_all() -> None:
    """A public name in the package namespace that is not in ``__all__`` is an accident."""
    public = {
        name
        for name, value in vars(keystile).items()
        if not name.startswith("_") and not getattr(value, "__name__", "").startswith("keystile.")
    }
    assert public <= set(keystile.__all__), public - set(keystile.__all__)


def test_expected_entry_points_are_public() -> None:
    """The names the README uses are exported."""
    assert {"create_app", "Keystile", "load_settings", "Settings", "KeystileError"} <= set(
        keystile.__all__
    )


def _loaded_after(script: str) -> set[str]:
    """The heavy top-level packages in ``sys.modules`` after ``script``, in a new interpreter."""
    probe = (
        f"{script}\nimport json, sys\n"
        "print(json.dumps([n for n in ('fastapi', 'starlette', 'sqlalchemy', 'redis', 'httpx')"
        " if n in sys.modules]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    return set(json.loads(result.stdout))


def test_import_keystile_is_cheap() -> None:
    """``import keystile`` loads no FastAPI, Starlette, SQLAlchemy, Redis or httpx: each public
    name is imported from its module on first use."""
    assert _loaded_after("import keystile") == set()
    assert _loaded_after("from keystile import KeystileError, normalize_email, Settings") == set()


def test_a_public_name_loads_its_module_on_first_use() -> None:
    """Using ``keystile.Keystile`` imports the web layer (so the test above can fail)."""
    assert {"fastapi", "sqlalchemy"} <= _loaded_after("import keystile; keystile.Keystile")


def test_every_public_name_resolves_in_a_fresh_interpreter() -> None:
    """Each name of ``__all__`` resolves to the object of the module it comes from, and
    ``dir(keystile)`` lists it before it is loaded."""
    script = (
        "import keystile\n"
        "assert set(keystile.__all__) <= set(dir(keystile)), 'dir'\n"
        "for name in keystile.__all__:\n"
        "    value = getattr(keystile, name)\n"
        "    assert value is not None, name\n"
        "    if name != '__version__':\n"
        "        assert value.__module__.startswith('keystile.'), name\n"
        "        module = sys.modules[value.__module__]\n"
        "        assert getattr(module, name) is value, name\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", "import sys\n" + script],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_an_unknown_name_is_an_attribute_error() -> None:
    """A name outside the public API raises ``AttributeError`` (so ``hasattr`` is honest)."""
    with pytest.raises(AttributeError, match="no attribute 'NotAThing'"):
        keystile.NotAThing  # noqa: B018
    assert not hasattr(keystile, "runtime_private_thing")
