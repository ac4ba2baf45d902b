"""The development mailbox and the console sender."""

from __future__ import annotations

import io
import threading
from datetime import UTC, datetime, timedelta

import anyio
import pytest

from keystile.clock import ManualClock
from keystile.senders import ConsoleSender, DevMailbox, Message, SendError

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def _message(number: int) -> Message:
    return Message(to=f"user{number}@example.com", subject=f"Message {number}", text="CODE123")


def test_entries_come_newest_first() -> None:
    """``entries()`` lists the last message added first, with its time."""
    mailbox = DevMailbox()
    for number in range(3):
        mailbox.add(_message(number), received_at=T0 + timedelta(seconds=number))
    entries = mailbox.entries()
    assert [entry.message.subject for entry in entries] == ["Message 2", "Message 1", "Message 0"]
    assert entries[0].received_at == T0 + timedelta(seconds=2)


def test_the_mailbox_is_bounded() -> None:
    """Past ``maxlen`` the oldest messages fall out, so memory stays bounded."""
    mailbox = DevMailbox(maxlen=3)
    for number in range(5):
        mailbox.add(_message(number), received_at=T0)
    assert len(mailbox) == 3
    assert [entry.message.subject for entry in mailbox.entries()] == [
        "Message 4",
        "Message 3",
        "Message 2",
    ]


def test_default_bound_is_one_hundred() -> None:
    """Without ``maxlen`` the mailbox keeps the last 100 messages."""
    mailbox = DevMailbox()
    for number in range(150):
        mailbox.add(_message(number), received_at=T0)
    assert mailbox.maxlen == 100
    assert len(mailbox) == 100
    assert mailbox.entries()[-1].message.subject == "Message 50"


def test_clear_forgets_everything() -> None:
    """``clear()`` empties the mailbox."""
    mailbox = DevMailbox()
    mailbox.add(_message(1), received_at=T0)
    mailbox.clear()
    assert mailbox.entries() == ()


def test_adds_from_many_threads_are_all_kept() -> None:
    """Concurrent adds lose nothing (the mailbox is locked)."""
    mailbox = DevMailbox(maxlen=10_000)

    def add_many() -> None:
        for number in range(500):
            mailbox.add(_message(number), received_at=T0)

    threads = [threading.Thread(target=add_many) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(mailbox) == 4000


def test_bad_arguments_are_refused() -> None:
    """A mailbox that keeps nothing, or a naive time, is a programming error."""
    with pytest.raises(ValueError, match="maxlen must be at least 1"):
        DevMailbox(maxlen=0)
    with pytest.raises(ValueError, match="received_at must be timezone-aware"):
        DevMailbox().add(_message(1), received_at=datetime(2026, 1, 1))


def test_repr_does_not_show_messages() -> None:
    """The mailbox ``repr`` gives counts only."""
    mailbox = DevMailbox(maxlen=5)
    mailbox.add(_message(1), received_at=T0)
    assert repr(mailbox) == "DevMailbox(maxlen=5, messages=1)"


def test_console_sender_prints_and_keeps_the_message(clock: ManualClock) -> None:
    """The console sender writes To, Subject and the text body, and keeps the message."""
    mailbox, stream = DevMailbox(), io.StringIO()
    sender = ConsoleSender(mailbox, stream=stream, clock=clock)
    message = Message(
        to="alice@example.com", subject="Your code", text="Code: XKPTMH\n", html="<b>"
    )
    anyio.run(sender.send, message)
    output = stream.getvalue()
    assert "To: alice@example.com\n" in output
    assert "Subject: Your code\n" in output
    assert "Code: XKPTMH\n" in output
    assert "<b>" not in output
    [entry] = mailbox.entries()
    assert entry.message is message
    assert entry.received_at == clock.now()


def test_console_sender_makes_its_own_mailbox_and_writes_to_stdout(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Without arguments it prints to ``sys.stdout`` and keeps messages in ``sender.mailbox``."""
    sender = ConsoleSender()
    anyio.run(sender.send, _message(7))
    assert "To: user7@example.com" in capsys.readouterr().out
    assert [entry.message.subject for entry in sender.mailbox.entries()] == ["Message 7"]
    assert sender.mailbox.entries()[0].received_at.tzinfo is not None


def test_console_sender_reports_a_closed_stream_and_still_keeps_the_message() -> None:
    """A stream that cannot be written raises ``SendError``; the mailbox still has the message."""
    stream = io.StringIO()
    stream.close()
    sender = ConsoleSender(stream=stream)
    with pytest.raises(SendError, match="the console stream cannot be written to") as caught:
        anyio.run(sender.send, _message(1))
    assert caught.value.code == "send_failed"
    assert "CODE123" not in str(caught.value)
    assert len(sender.mailbox) == 1
