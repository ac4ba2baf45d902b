"""The wording of the messages Keystile sends. Pure: the caller passes the time.

Each message comes in plain text and HTML. Every value put into the HTML is
escaped, because the recipient and the service name come from input and
configuration, not from us.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from html import escape

from keystile.senders.base import Message

IGNORE_NOTICE = "If you did not ask for this code, ignore this message."

_TEXT = """\
Your sign-in code for {service}:

    {code}

It expires in {lifetime}, at {expires} UTC.
It was requested for {to}. Do not share it with anyone.

{notice}
"""

_HTML = """\
<!DOCTYPE html>
<html lang="en">
<body style="font-family: sans-serif; color: #222;">
<p>Your sign-in code for {service}:</p>
<p style="font-family: monospace; font-size: 32px; font-weight: bold; \
letter-spacing: 0.3em;">{code}</p>
<p>It expires in {lifetime}, at {expires}&nbsp;UTC.<br>
It was requested for {to}. Do not share it with anyone.</p>
<p style="color: #666;">{notice}</p>
</body>
</html>
"""


def otp_message(
    *,
    to: str,
    code: str,
    expires_at: datetime,
    lifetime: timedelta,
    service_name: str = "Keystile",
) -> Message:
    """The message that carries a one-time sign-in code.

    Both bodies give the code, how long it lives (``lifetime``, in minutes)
    and the moment it expires (``expires_at``, shown in UTC). The code is
    kept out of the subject, which mail clients show on lock screens and which
    the :class:`Message` ``repr`` displays.

    Raises:
        ValueError: ``expires_at`` is naive, or ``to`` or ``service_name``
            contains a line break.
    """
    return _code_message(
        to=to,
        subject=f"Your {service_name} sign-in code",
        templates=(_TEXT, _HTML),
        values={
            "service": service_name,
            "code": code,
            "to": to,
            "notice": IGNORE_NOTICE,
        },
        expires_at=expires_at,
        lifetime=lifetime,
    )


def describe_lifetime(lifetime: timedelta) -> str:
    """``lifetime`` in words: whole minutes (rounded down, so never promised too long),
    or seconds when it is under a minute."""
    seconds = int(lifetime.total_seconds())
    if seconds < 60:
        return f"{seconds} second" + ("" if seconds == 1 else "s")
    minutes = seconds // 60
    return f"{minutes} minute" + ("" if minutes == 1 else "s")


_REGISTRATION_TEXT = """\
Someone asked to create a {service} account with a password for {to}.
To confirm it is you, enter this code:

    {code}

It expires in {lifetime}, at {expires} UTC. Until it is entered the password
does not work. If this was not you, ignore this message: nothing changes.
"""

_REGISTRATION_HTML = """\
<!DOCTYPE html>
<html lang="en">
<body style="font-family: sans-serif; color: #222;">
<p>Someone asked to create a {service} account with a password for {to}.
To confirm it is you, enter this code:</p>
<p style="font-family: monospace; font-size: 32px; font-weight: bold; \
letter-spacing: 0.3em;">{code}</p>
<p>It expires in {lifetime}, at {expires}&nbsp;UTC. Until it is entered the password
does not work.</p>
<p style="color: #666;">If this was not you, ignore this message: nothing changes.</p>
</body>
</html>
"""


def registration_message(
    *,
    to: str,
    code: str,
    expires_at: datetime,
    lifetime: timedelta,
    service_name: str = "Keystile",
) -> Message:
    """The message that confirms a password registration (the code stays out of the subject).

    Raises:
        ValueError: ``expires_at`` is naive.
    """
    return _code_message(
        to=to,
        subject=f"Confirm your {service_name} account",
        templates=(_REGISTRATION_TEXT, _REGISTRATION_HTML),
        values={"service": service_name, "code": code, "to": to},
        expires_at=expires_at,
        lifetime=lifetime,
    )


def _code_message(
    *,
    to: str,
    subject: str,
    templates: tuple[str, str],
    values: dict[str, str],
    expires_at: datetime,
    lifetime: timedelta,
) -> Message:
    """Fill a (text, HTML) template pair that carries a code, escaping every HTML value."""
    if expires_at.tzinfo is None:
        raise ValueError("expires_at must be timezone-aware")
    filled = {
        **values,
        "lifetime": describe_lifetime(lifetime),
        "expires": expires_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M"),
    }
    text, html = templates
    return Message(
        to=to,
        subject=subject,
        text=text.format(**filled),
        html=html.format(**{name: escape(value) for name, value in filled.items()}),
    )


# Security notices: what changed on the account, when, and what to do if it was not
# the recipient. They never carry a secret, a code or a link that signs anyone in.

_NOTICE_TEXT = """\
{headline}

Account: {to}
When: {when} UTC

{detail}
If this was not you, sign in and secure your account, and contact {service} support.
"""

_NOTICE_HTML = """\
<!DOCTYPE html>
<html lang="en">
<body style="font-family: sans-serif; color: #222;">
<p><strong>{headline}</strong></p>
<p>Account: {to}<br>
When: {when}&nbsp;UTC</p>
<p>{detail}</p>
<p style="color: #666;">If this was not you, sign in and secure your account, and contact \
{service} support.</p>
</body>
</html>
"""


def _notice(
    *, to: str, subject: str, headline: str, detail: str, at: datetime, service: str
) -> Message:
    """Fill the security-notice template (every HTML value escaped)."""
    if at.tzinfo is None:
        raise ValueError("at must be timezone-aware")
    values = {
        "headline": headline,
        "detail": detail,
        "to": to,
        "when": at.astimezone(UTC).strftime("%Y-%m-%d %H:%M"),
        "service": service,
    }
    return Message(
        to=to,
        subject=subject,
        text=_NOTICE_TEXT.format(**values),
        html=_NOTICE_HTML.format(**{name: escape(value) for name, value in values.items()}),
    )


def totp_enabled_message(
    *, to: str, replaced: bool, at: datetime, service_name: str = "Keystile"
) -> Message:
    """The notice that two-step verification was turned on (``replaced``: that the
    authenticator app was replaced by a new one). Never carries the secret or a code.

    Raises:
        ValueError: ``at`` is naive, or ``to`` or ``service_name`` contains a line break.
    """
    if replaced:
        return _notice(
            to=to,
            subject=f"Your {service_name} authenticator app was replaced",
            headline=f"The authenticator app of your {service_name} account was replaced.",
            detail=(
                "Codes from the authenticator you used before no longer work; "
                "sign-ins now ask for a code from the new one."
            ),
            at=at,
            service=service_name,
        )
    return _notice(
        to=to,
        subject=f"Two-step verification is on for your {service_name} account",
        headline=f"Two-step verification was turned on for your {service_name} account.",
        detail="From now on, signing in asks for a code from your authenticator app.",
        at=at,
        service=service_name,
    )


def totp_disabled_message(*, to: str, at: datetime, service_name: str = "Keystile") -> Message:
    """The notice that two-step verification was turned off (the authenticator removed).

    Raises:
        ValueError: ``at`` is naive, or ``to`` or ``service_name`` contains a line break.
    """
    return _notice(
        to=to,
        subject=f"Two-step verification is off for your {service_name} account",
        headline=f"Two-step verification was turned off for your {service_name} account.",
        detail="Signing in no longer asks for a code from an authenticator app.",
        at=at,
        service=service_name,
    )


_MFA_RESET_TEXT = """\
An administrator reset two-step verification on your {service} account ({to})
at {when} UTC.

Your authenticator app and your recovery codes no longer work for this
account, and every device signed in to it was signed out. Sign in again and
set up two-step verification anew.

If you did not ask for this, contact your administrator at once.
"""

_MFA_RESET_HTML = """\
<!DOCTYPE html>
<html lang="en">
<body style="font-family: sans-serif; color: #222;">
<p>An administrator reset two-step verification on your {service} account ({to})
at {when}&nbsp;UTC.</p>
<p>Your authenticator app and your recovery codes no longer work for this
account, and every device signed in to it was signed out. Sign in again and
set up two-step verification anew.</p>
<p style="color: #666;">If you did not ask for this, contact your administrator at once.</p>
</body>
</html>
"""


def mfa_reset_message(*, to: str, reset_at: datetime, service_name: str = "Keystile") -> Message:
    """The notice that an administrator reset the user's two-step verification.

    Says what happened, when (UTC) and what to do if it was unexpected; it
    carries no secret, code or link, so it is safe however it travels.

    Raises:
        ValueError: ``reset_at`` is naive.
    """
    if reset_at.tzinfo is None:
        raise ValueError("reset_at must be timezone-aware")
    values = {
        "service": service_name,
        "to": to,
        "when": reset_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M"),
    }
    return Message(
        to=to,
        subject=f"Your {service_name} two-step verification was reset by an administrator",
        text=_MFA_RESET_TEXT.format(**values),
        html=_MFA_RESET_HTML.format(**{name: escape(value) for name, value in values.items()}),
    )


# Recovery-code notices. They say how many codes remain, never a code: a mailbox
# may be what the attacker holds, so codes are shown once, on screen, and never mailed.


def recovery_code_used_message(
    *, to: str, remaining: int, at: datetime, service_name: str = "Keystile"
) -> Message:
    """The notice that a recovery code was used (a second factor or a step-up), and how
    many unused codes remain. Never carries a code.

    Raises:
        ValueError: ``at`` is naive, or ``remaining`` is negative.
    """
    if remaining < 0:
        raise ValueError("remaining must not be negative")
    if remaining == 0:
        left = "No recovery codes remain: generate new ones now."
    elif remaining == 1:
        left = "1 recovery code remains."
    else:
        left = f"{remaining} recovery codes remain."
    return _notice(
        to=to,
        subject=f"A recovery code was used on your {service_name} account",
        headline=f"A recovery code was used to verify your {service_name} account; {left}",
        detail=(
            "Each recovery code works once. If you lost your authenticator app, set it up "
            "again, and generate new recovery codes when few are left."
        ),
        at=at,
        service=service_name,
    )


def recovery_codes_generated_message(
    *, to: str, at: datetime, service_name: str = "Keystile"
) -> Message:
    """The notice that new recovery codes were generated (the earlier ones stopped
    working). Never carries a code.

    Raises:
        ValueError: ``at`` is naive.
    """
    return _notice(
        to=to,
        subject=f"New recovery codes for your {service_name} account",
        headline=f"New recovery codes were generated for your {service_name} account.",
        detail="The recovery codes you had before no longer work.",
        at=at,
        service=service_name,
    )


def recovery_mfa_reset_message(*, to: str, at: datetime, service_name: str = "Keystile") -> Message:
    """The notice that two-step verification was reset with a recovery code: the
    authenticator and the remaining codes removed, other sessions signed out.

    Raises:
        ValueError: ``at`` is naive.
    """
    return _notice(
        to=to,
        subject=f"Two-step verification was reset on your {service_name} account",
        headline=(
            f"Two-step verification was reset with a recovery code on your {service_name} account."
        ),
        detail=(
            "Your authenticator app and your remaining recovery codes no longer work, and "
            "every other device signed in to the account was signed out. Signing in now asks "
            "for one factor only: set up two-step verification again."
        ),
        at=at,
        service=service_name,
    )
