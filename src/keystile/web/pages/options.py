"""Route options of the hosted pages: where each page lives, which templates and texts it uses.

Every page path, the prefix in front of them all, a template per page, the
Jinja2 search path a host puts in front of Keystile's templates, the base
layout, overrides of any text and the page language are options here, so a
host mounts the pages where it likes and dresses them in its own layout::

    PageOptions(
        prefix="/account",
        template_dirs=("templates",),         # searched before Keystile's own
        base_template="my_layout.html",       # defines blocks title, head and content
        texts={"*": {"Sign in": "Log in"}},   # per language code; "*" for every language
    )
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Final, Literal

PageName = Literal[
    "sign_in",
    "sign_in_code",
    "totp_setup",
    "totp_verify",
    "recovery_code_verify",
    "recovery_codes",
    "account",
    "sign_out",
    "assets",
]

#: API.md's page paths (before the prefix). ``totp_verify`` and
#: ``recovery_code_verify`` also answer under ``/{token}`` (the second step of a sign-in).
DEFAULT_PATHS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "sign_in": "/sign-in",
        "sign_in_code": "/sign-in/code",
        "totp_setup": "/auth/totp-setup",
        "totp_verify": "/auth/totp-verify",
        "recovery_code_verify": "/auth/recovery-code-verify",
        "recovery_codes": "/auth/recovery-codes",
        "account": "/auth/account",
        "sign_out": "/sign-out",
        "assets": "/auth/pages-static",
    }
)

#: The template of each page (a name in the Jinja2 search path).
DEFAULT_TEMPLATES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "sign_in": "keystile/sign_in.html",
        "sign_in_code": "keystile/sign_in_code.html",
        "totp_setup": "keystile/totp_setup.html",
        "totp_verify": "keystile/totp_verify.html",
        "recovery_code_verify": "keystile/recovery_code_verify.html",
        "recovery_codes": "keystile/recovery_codes.html",
        "recovery_codes_show": "keystile/recovery_codes_show.html",
        "account": "keystile/account.html",
        "sign_out": "keystile/sign_out.html",
        "error": "keystile/error.html",
    }
)


@dataclass(frozen=True, slots=True)
class PageOptions:
    """How the hosted pages are mounted and look.

    Attributes:
        prefix: put in front of every path (``""`` or ``/segment…``).
        paths: page name → path, merged over :data:`DEFAULT_PATHS`.
        templates: page name → template name, merged over :data:`DEFAULT_TEMPLATES`.
        template_dirs: folders searched for templates before Keystile's own.
        base_template: the layout every page extends; a host's layout defines the
            blocks ``title``, ``head`` (where the stylesheet link goes) and ``content``.
        texts: language code (or ``"*"``) → {English text: replacement}.
        catalogues: language code → a ``.po`` file, added to (or replacing) the shipped ones.
        language: one language for every page; ``None`` negotiates ``Accept-Language``.
        secure_cookies: ``Secure`` (and ``__Host-`` names) on the cookies; ``None``:
            in production mode only.
        after_sign_in: where a sign-in without ``next`` lands; ``None``: the account page.
    """

    prefix: str = ""
    paths: Mapping[str, str] = field(default_factory=dict)
    templates: Mapping[str, str] = field(default_factory=dict)
    template_dirs: tuple[Path | str, ...] = ()
    base_template: str = "keystile/base.html"
    texts: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    catalogues: Mapping[str, Path | str] = field(default_factory=dict)
    language: str | None = None
    secure_cookies: bool | None = None
    after_sign_in: str | None = None

    def __post_init__(self) -> None:
        if self.prefix and (not self.prefix.startswith("/") or self.prefix.endswith("/")):
            raise ValueError("the page prefix must be empty or start with / and not end with /")
        for name, path in self.paths.items():
            if name not in DEFAULT_PATHS:
                raise ValueError(f"unknown page {name!r}")
            if not path.startswith("/") or path.endswith("/") or "{" in path:
                raise ValueError(f"the path of {name} must start with / and not end with /")

    def path(self, name: str) -> str:
        """The full path of page ``name`` (prefix included)."""
        return self.prefix + self.paths.get(name, DEFAULT_PATHS[name])

    def template(self, name: str) -> str:
        """The template name of page ``name``."""
        return self.templates.get(name, DEFAULT_TEMPLATES[name])

    def all_paths(self) -> dict[str, str]:
        """Every page name → its full path."""
        return {name: self.path(name) for name in DEFAULT_PATHS}

    def with_defaults(self, *, language: str | None, secure: bool) -> PageOptions:
        """These options with the deployment's settings filling what was left unset."""
        return replace(
            self,
            language=self.language or language,
            secure_cookies=secure if self.secure_cookies is None else self.secure_cookies,
        )
