"""The error tree. Every error carries a stable machine-readable ``code``.

Errors know nothing about HTTP: the web layer's single mapper
(:mod:`keystile.web.errors`) turns each ``code`` into a status and a body.
Expected outcomes of a verification (wrong code, expired, replayed) are
returned values in the services, not exceptions; these errors are for what
ends a request.

::

    KeystileError
     +-- ConfigurationError        configuration_error   (start-up; lists every problem)
     +-- InvalidRequestError       invalid_request       (malformed input; per-field reasons)
     +-- AuthenticationFailedError authentication_failed (one answer for every wrong credential)
     +-- UnauthenticatedError      unauthenticated       (no or invalid bearer token)
     +-- InsufficientAuthenticationError
     |                 insufficient_authentication (a guard wants a second factor or a more
     |                                              recent sign-in; acr_values, max_age)
     +-- RecoveryCodesRequiredError
     |                 recovery_codes_required     (a route guarded by require_recovery_codes,
     |                                              and the user holds no unused code)
     +-- AlreadyRegisteredError    already_registered    (password registration, explicit opt-in)
     +-- AlreadyEnrolledError      already_enrolled      (TOTP setup while TOTP is active)
     +-- TooManyAttemptsError      too_many_attempts     (a brute-force limit holds; retry_after)
     +-- UnavailableError          unavailable           (store or limiter unreachable: fail closed)
     +-- SchemaOutdatedError       schema_outdated       (database needs ``keystile db upgrade``)
     +-- NotFoundError             not_found             (administration: no such user)
     +-- senders.SendError         send_failed           (delivery failed; logged and audited,
                                                          never shown to the requester)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


class KeystileError(Exception):
    """Root of every error Keystile raises on purpose."""

    code: str = "keystile_error"
    default_message: str = "Keystile error."

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)


class ConfigurationError(KeystileError):
    """The configuration is unsafe or incomplete; ``problems`` names every option to change."""

    code = "configuration_error"

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        lines = "\n".join(f"  - {problem}" for problem in self.problems)
        super().__init__(f"Keystile configuration is not usable:\n{lines}")


class InvalidRequestError(KeystileError):
    """Malformed input; ``fields`` maps each offending field to a reason."""

    code = "invalid_request"
    default_message = "The request is malformed."

    def __init__(self, message: str | None = None, fields: Mapping[str, str] | None = None) -> None:
        self.fields = dict(fields or {})
        super().__init__(message)


class AuthenticationFailedError(KeystileError):
    """A credential did not verify. Deliberately says nothing about which part was wrong."""

    code = "authentication_failed"
    default_message = "Authentication failed."


class UnauthenticatedError(KeystileError):
    """The call needs a valid bearer token or session and has none."""

    code = "unauthenticated"
    default_message = "A valid bearer token is required."


class InsufficientAuthenticationError(KeystileError):
    """The session is valid but not strong or recent enough for the call (RFC 9470).

    ``acr_values`` names the authentication context the call wants (a second
    factor), ``max_age`` the most seconds since the user last proved who they
    are; either or both are set. The web layer turns them into a
    ``WWW-Authenticate: Bearer error="insufficient_user_authentication"``
    challenge, so a client knows to step up rather than sign in again.
    """

    code = "insufficient_authentication"
    default_message = "This call needs a stronger or more recent sign-in."

    def __init__(
        self,
        message: str | None = None,
        *,
        max_age: int | None = None,
        acr_values: str | None = None,
    ) -> None:
        self.max_age = max_age
        self.acr_values = acr_values
        super().__init__(message)


class RecoveryCodesRequiredError(KeystileError):
    """The route wants the user to hold recovery codes, and they hold no unused one.

    Raised by the ``require_recovery_codes`` guard (:mod:`keystile.web.recovery`):
    the user should generate codes (``POST /auth/user/recovery_code/generate``,
    or the setup page) before going on.
    """

    code = "recovery_codes_required"
    default_message = "Set up recovery codes before going on."


class AlreadyRegisteredError(KeystileError):
    """Registration for an identity that already has an account."""

    code = "already_registered"
    default_message = "This identity cannot be registered."


class AlreadyEnrolledError(KeystileError):
    """TOTP setup for a user whose authenticator is active, without a recent second factor.

    Replacing an authenticator needs the session to have passed a second
    factor lately; otherwise whoever holds a password-only session could
    swap in an authenticator of their own.
    """

    code = "already_enrolled"
    default_message = (
        "Two-step verification is already on. Verify with your authenticator first to replace it."
    )


class TooManyAttemptsError(KeystileError):
    """A brute-force limit holds; ``retry_after`` is in whole seconds."""

    code = "too_many_attempts"
    default_message = "Too many attempts. Try again later."

    def __init__(self, retry_after: int) -> None:
        self.retry_after = max(1, int(retry_after))
        super().__init__()


class UnavailableError(KeystileError):
    """A store the decision depends on cannot be reached; nothing was accepted."""

    code = "unavailable"
    default_message = "The service is temporarily unavailable."


class SchemaOutdatedError(KeystileError):
    """The database schema is older than this version of Keystile."""

    code = "schema_outdated"
    default_message = "The database schema is not up to date: run `keystile db upgrade`."


class NotFoundError(KeystileError):
    """An administrative lookup found nothing."""

    code = "not_found"
    default_message = "Not found."
