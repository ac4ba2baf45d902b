"""The sign-in code message (pure) and the :class:`Message` value."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from keystile.senders import Message, otp_message
from keystile.senders.messages import IGNORE_NOTICE, describe_lifetime

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def _message(**overrides: str) -> Message:
    values = {"to": "alice@example.com", "service_name": "Keystile", **overrides}
    return otp_message(
        code="XKPTMH",
        expires_at=NOW + timedelta(minutes=10),
        lifetime=timedelta(minutes=10),
        **values,
    )


def test_both_bodies_give_the_code_and_the_expiry() -> None:
    """Text and HTML both state the code, the lifetime in minutes and the UTC expiry."""
    message = _message()
    assert message.html is not None
    for body in (message.text, message.html):
        assert "XKPTMH" in body
        assert "10 minutes" in body
        assert "2026-01-01 12:10" in body
        assert "UTC" in body
        assert IGNORE_NOTICE in body
    assert IGNORE_NOTICE == "If you did not ask for this code, ignore this message."


def test_the_code_stays_out_of_the_subject() -> None:
    """The subject shows on lock screens and in ``repr``, so it names the service, not the code."""
    message = _message()
    assert message.subject == "Your Keystile sign-in code"
    assert message.to == "alice@example.com"
    assert "XKPTMH" not in message.subject


def test_html_shows_the_code_large_and_letter_spaced() -> None:
    """The code is set in large, letter-spaced monospace so it is easy to copy by eye."""
    html = _message().html
    assert html is not None
    assert "letter-spacing" in html
    assert "font-size: 32px" in html
    assert ">XKPTMH</p>" in html


def test_expiry_is_shown_in_utc_whatever_the_zone_given() -> None:
    """An aware ``expires_at`` in another zone is converted to UTC for display."""
    paris = timezone(timedelta(hours=2))
    message = otp_message(
        to="alice@example.com",
        code="XKPTMH",
        expires_at=datetime(2026, 1, 1, 14, 10, tzinfo=paris),
        lifetime=timedelta(minutes=10),
    )
    assert "2026-01-01 12:10 UTC" in message.text


def test_html_escapes_a_hostile_recipient_and_service_name() -> None:
    """Input put into the HTML body is escaped; the text body keeps it as it is."""
    message = _message(to="<script>alert(1)</script>@example.com", service_name='Evil & "Co" <b>')
    assert message.html is not None
    assert "<script>" not in message.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;@example.com" in message.html
    assert "Evil &amp; &quot;Co&quot; &lt;b&gt;" in message.html
    assert "<script>alert(1)</script>@example.com" in message.text


def test_repr_hides_the_bodies() -> None:
    """``repr`` and ``str`` show recipient and subject only: the bodies carry the code."""
    message = _message()
    for shown in (repr(message), str(message)):
        assert "XKPTMH" not in shown
        assert shown == "Message(to='alice@example.com', subject='Your Keystile sign-in code')"


@pytest.mark.parametrize("field", ["to", "subject"])
def test_a_line_break_in_a_header_field_is_refused(field: str) -> None:
    """A line break in ``to`` or ``subject`` could inject email headers, so it is refused."""
    values = {"to": "alice@example.com", "subject": "Hi", field: "x\r\nBcc: eve@example.com"}
    with pytest.raises(ValueError, match=f"the message {field} must not contain a line break"):
        Message(text="body", **values)


def test_a_message_needs_a_recipient() -> None:
    """An empty recipient is a programming error, caught at construction."""
    with pytest.raises(ValueError, match="a message needs a recipient"):
        Message(to=" ", subject="Hi", text="body")


def test_naive_expiry_is_refused() -> None:
    """Keystile works in aware UTC only; a naive time would be shown in an unknown zone."""
    with pytest.raises(ValueError, match="expires_at must be timezone-aware"):
        otp_message(
            to="alice@example.com",
            code="XKPTMH",
            expires_at=datetime(2026, 1, 1, 12, 10),
            lifetime=timedelta(minutes=10),
        )


@pytest.mark.parametrize(
    ("lifetime", "words"),
    [
        (timedelta(minutes=10), "10 minutes"),
        (timedelta(minutes=1), "1 minute"),
        (timedelta(seconds=90), "1 minute"),
        (timedelta(seconds=30), "30 seconds"),
        (timedelta(seconds=1), "1 second"),
    ],
)
def test_lifetime_is_rounded_down_to_whole_minutes(lifetime: timedelta, words: str) -> None:
    """The lifetime is never overstated: whole minutes rounded down, seconds under a minute."""
    assert describe_lifetime(lifetime) == words
