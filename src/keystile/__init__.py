"""Keystile: the sign-in layer for Python apps.

The public API. Everything not named in ``__all__`` is internal and may change.

Importing ``keystile`` is cheap: each public name is imported from its module
the first time it is used (:func:`__getattr__`), so ``import keystile`` alone,
or importing a pure module such as ``keystile.identity`` (which runs this file
first), loads neither FastAPI nor SQLAlchemy, Redis or httpx. Static type
checkers see the plain imports below.
"""

import typing as _typing
from importlib import import_module as _import_module

if _typing.TYPE_CHECKING:
    from keystile.clock import Clock, ManualClock, SystemClock
    from keystile.errors import (
        AlreadyEnrolledError,
        AlreadyRegisteredError,
        AuthenticationFailedError,
        ConfigurationError,
        InsufficientAuthenticationError,
        InvalidRequestError,
        KeystileError,
        NotFoundError,
        RecoveryCodesRequiredError,
        SchemaOutdatedError,
        TooManyAttemptsError,
        UnauthenticatedError,
        UnavailableError,
    )
    from keystile.flows.sessions import Authenticated, Session
    from keystile.flows.sign_in import SecondFactorRequired
    from keystile.identity import normalize_email, normalize_identity
    from keystile.limits.protection import Attempt, HookProtection
    from keystile.runtime import Extensions, Runtime
    from keystile.senders.base import Message, Sender, SendError
    from keystile.settings import Settings, load_settings
    from keystile.store.users import User
    from keystile.web.app import Keystile, create_app
    from keystile.web.authentication import SessionAuthenticationBackend, SessionUser
    from keystile.web.errors import GuardError
    from keystile.web.recovery import RequireRecoveryCodesMiddleware, recovery_code_available

__version__ = "0.1.0"

#: The module each public name is imported from, on first use.
_EXPORTS: dict[str, str] = {
    "AlreadyRegisteredError": "keystile.errors",
    "Attempt": "keystile.limits.protection",
    "Authenticated": "keystile.flows.sessions",
    "AuthenticationFailedError": "keystile.errors",
    "Clock": "keystile.clock",
    "ConfigurationError": "keystile.errors",
    "Extensions": "keystile.runtime",
    "GuardError": "keystile.web.errors",
    "HookProtection": "keystile.limits.protection",
    "InsufficientAuthenticationError": "keystile.errors",
    "InvalidRequestError": "keystile.errors",
    "Keystile": "keystile.web.app",
    "KeystileError": "keystile.errors",
    "ManualClock": "keystile.clock",
    "SecondFactorRequired": "keystile.flows.sign_in",
    "AlreadyEnrolledError": "keystile.errors",
    "Message": "keystile.senders.base",
    "NotFoundError": "keystile.errors",
    "RecoveryCodesRequiredError": "keystile.errors",
    "RequireRecoveryCodesMiddleware": "keystile.web.recovery",
    "Runtime": "keystile.runtime",
    "SchemaOutdatedError": "keystile.errors",
    "SendError": "keystile.senders.base",
    "Sender": "keystile.senders.base",
    "Session": "keystile.flows.sessions",
    "SessionAuthenticationBackend": "keystile.web.authentication",
    "SessionUser": "keystile.web.authentication",
    "Settings": "keystile.settings",
    "SystemClock": "keystile.clock",
    "TooManyAttemptsError": "keystile.errors",
    "UnauthenticatedError": "keystile.errors",
    "UnavailableError": "keystile.errors",
    "User": "keystile.store.users",
    "create_app": "keystile.web.app",
    "load_settings": "keystile.settings",
    "normalize_email": "keystile.identity",
    "normalize_identity": "keystile.identity",
    "recovery_code_available": "keystile.web.recovery",
}

__all__ = [
    "AlreadyEnrolledError",
    "AlreadyRegisteredError",
    "Attempt",
    "Authenticated",
    "AuthenticationFailedError",
    "Clock",
    "ConfigurationError",
    "Extensions",
    "GuardError",
    "HookProtection",
    "InsufficientAuthenticationError",
    "InvalidRequestError",
    "Keystile",
    "KeystileError",
    "ManualClock",
    "Message",
    "NotFoundError",
    "RecoveryCodesRequiredError",
    "RequireRecoveryCodesMiddleware",
    "Runtime",
    "SchemaOutdatedError",
    "SecondFactorRequired",
    "SendError",
    "Sender",
    "Session",
    "SessionAuthenticationBackend",
    "SessionUser",
    "Settings",
    "SystemClock",
    "TooManyAttemptsError",
    "UnauthenticatedError",
    "UnavailableError",
    "User",
    "__version__",
    "create_app",
    "load_settings",
    "normalize_email",
    "normalize_identity",
    "recovery_code_available",
]


def __getattr__(name: str) -> object:
    """Import the public ``name`` from its module on first use (then it is a plain attribute).

    Raises:
        AttributeError: ``name`` is not part of the public API.
    """
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(_import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The public names (loaded or not) and whatever the module already holds."""
    return sorted(set(globals()) | set(__all__))
