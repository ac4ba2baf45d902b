"""The pages' languages: gettext catalogues read with Babel at start-up, and the choice per request.

Keystile ships its texts in English (the message ids) and a complete German
catalogue (``locale/de/LC_MESSAGES/keystile.po``). A host adds or replaces a
language with its own ``.po`` file and overrides any single text per
language (or for every language, ``"*"``); an override wins over a catalogue.
The page language is a setting, or negotiated from ``Accept-Language``
among the languages available, English when nothing matches.
"""

from __future__ import annotations

import gettext
import io
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Final

from babel.core import Locale, UnknownLocaleError
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

DOMAIN: Final = "keystile"
DEFAULT_LANGUAGE: Final = "en"
#: The languages shipped with Keystile (beside English, the message ids).
SHIPPED: Final = ("de",)
#: At most this many Accept-Language entries are looked at.
MAX_ACCEPT_ENTRIES: Final = 20


def _load_po(text: str, language: str) -> gettext.GNUTranslations:
    """A catalogue's ``.po`` text as gettext translations (compiled in memory)."""
    catalog = read_po(io.StringIO(text), locale=language, domain=DOMAIN)
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


def shipped_catalogue(language: str) -> str:
    """The text of a shipped ``.po`` file."""
    path = resources.files("keystile.web.pages") / "locale" / language / "LC_MESSAGES"
    return (path / f"{DOMAIN}.po").read_text(encoding="utf-8")


@dataclass(frozen=True, slots=True)
class Translator:
    """The texts of one language: ``gettext`` and ``ngettext`` with overrides and ``%`` fields."""

    language: str
    translations: gettext.NullTranslations
    overrides: Mapping[str, str]

    def gettext(self, message: str, **values: Any) -> str:
        """``message`` in this language, its ``%(name)s`` fields filled from ``values``."""
        text = self.overrides.get(message)
        if text is None:
            text = self.translations.gettext(message)
        return text % values if values else text

    def ngettext(self, singular: str, plural: str, count: int, **values: Any) -> str:
        """The form of ``singular``/``plural`` for ``count`` (also given as ``%(n)s``)."""
        chosen = singular if count == 1 else plural
        text = self.overrides.get(chosen)
        if text is None:
            text = self.translations.ngettext(singular, plural, count)
        return text % {"n": count, **values}


def _parse_accept_language(header: str) -> list[str]:
    """Language tags of an ``Accept-Language`` header, best first (``q=0`` dropped)."""
    weighted: list[tuple[float, int, str]] = []
    for index, item in enumerate(header.split(",")[:MAX_ACCEPT_ENTRIES]):
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                quality = float(params[2:])
            except ValueError:
                continue
        if tag and quality > 0:
            weighted.append((-quality, index, tag.strip()))
    return [tag for _, _, tag in sorted(weighted)]


class Languages:
    """Every language the pages speak, built once at start-up.

    Args:
        texts: language code (or ``"*"``) → {English text: replacement}.
        catalogues: language code → a ``.po`` file of the host's.
        fixed: one language for every page, or ``None`` to negotiate.

    Raises:
        ValueError: ``fixed`` names a language that has no catalogue.
    """

    def __init__(
        self,
        *,
        texts: Mapping[str, Mapping[str, str]] | None = None,
        catalogues: Mapping[str, Path | str] | None = None,
        fixed: str | None = None,
    ) -> None:
        texts = texts or {}
        sources = {language: shipped_catalogue(language) for language in SHIPPED}
        for language, path in (catalogues or {}).items():
            sources[language] = Path(path).read_text(encoding="utf-8")
        common = dict(texts.get("*", {}))
        self._translators: dict[str, Translator] = {
            DEFAULT_LANGUAGE: Translator(
                DEFAULT_LANGUAGE,
                gettext.NullTranslations(),
                {**common, **texts.get(DEFAULT_LANGUAGE, {})},
            )
        }
        for language, source in sources.items():
            self._translators[language] = Translator(
                language, _load_po(source, language), {**common, **texts.get(language, {})}
            )
        if fixed is not None and fixed not in self._translators:
            raise ValueError(f"no catalogue for the page language {fixed!r}")
        self._fixed = fixed

    @property
    def available(self) -> tuple[str, ...]:
        """Every language code with a catalogue, English first."""
        return tuple(self._translators)

    def choose(self, accept_language: str | None) -> Translator:
        """The fixed language, else the best of ``accept_language`` available, else English."""
        if self._fixed is not None:
            return self._translators[self._fixed]
        for tag in _parse_accept_language(accept_language or ""):
            try:
                locale = Locale.parse(tag, sep="-")
            except (ValueError, UnknownLocaleError):
                continue
            for candidate in (str(locale), locale.language):
                if candidate in self._translators:
                    return self._translators[candidate]
        return self._translators[DEFAULT_LANGUAGE]

    def get(self, language: str) -> Translator:
        """The translator of ``language``.

        Raises:
            KeyError: no such language.
        """
        return self._translators[language]


#: What a template calls: ``_("text", name=value)``.
Gettext = Callable[..., str]
