"""The public API is exactly what ``keystile.__all__`` names."""

from __future__ import annotations

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
