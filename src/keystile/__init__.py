"""Keystile: the sign-in layer for Python apps.

The public API. Everything not named in ``__all__`` is internal and may change.
"""

from keystile.clock import Clock, ManualClock, SystemClock
from keystile.errors import (
    AlreadyRegisteredError,
    AuthenticationFailedError,
    ConfigurationError,
    InsufficientAuthenticationError,
    InvalidRequestError,
    KeystileError,
    NotFoundError,
    SchemaOutdatedError,
    TooManyAttemptsError,
    UnauthenticatedError,
    UnavailableError,
)
from keystile.flows.sessions import Authenticated, Session
from keystile.identity import normalize_email, normalize_identity
from keystile.limits.protection import Attempt, HookProtection
from keystile.runtime import Extensions, Runtime
from keystile.senders.base import Message, Sender, SendError
from keystile.settings import Settings, load_settings
from keystile.store.users import User
from keystile.web.app import Keystile, create_app
from keystile.web.authentication import SessionAuthenticationBackend, SessionUser
from keystile.web.errors import GuardError

__version__ = "0.1.0"

__all__ = [
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
    "Runtime",
    "SchemaOutdatedError",
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
]
