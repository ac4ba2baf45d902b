"""The dispatcher: a bounded send queue, a fixed number of workers, drain and close."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from keystile.senders import ConsoleSender, Message, Sender, SendError
from keystile.senders.dispatch import Dispatcher

pytestmark = pytest.mark.anyio

SECRET = "QWERTY"


def message(number: int) -> Message:
    return Message(to=f"user{number}@example.com", subject="Code", text=f"code {SECRET}")


class Gate:
    """A sender that records each send as it starts and finishes, and blocks until opened."""

    def __init__(self, *, open_: bool = False) -> None:
        self.started: list[str] = []
        self.delivered: list[str] = []
        self.running = 0
        self.most_running = 0
        self._open = asyncio.Event()
        self._changed = asyncio.Event()
        if open_:
            self._open.set()
        self.closed = False

    async def send(self, message: Message) -> None:
        self.started.append(message.to)
        self._changed.set()
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            await self._open.wait()
        finally:
            self.running -= 1
        self.delivered.append(message.to)

    async def aclose(self) -> None:
        self.closed = True

    def open(self) -> None:
        self._open.set()

    async def wait_started(self, count: int) -> None:
        """Until ``count`` sends have started (one second at most)."""
        async with asyncio.timeout(1):
            while len(self.started) < count:
                self._changed.clear()
                await self._changed.wait()


class Failures:
    """An ``on_failure`` callback that keeps what it was given."""

    def __init__(self) -> None:
        self.reports: list[tuple[str, Exception]] = []

    async def __call__(self, message: Message, error: Exception) -> None:
        self.reports.append((message.to, error))


async def test_a_message_beyond_the_queue_is_reported_failed_without_waiting(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With the worker busy and the queue full, one more message is refused at once.

    It is reported to ``on_failure`` as a :class:`SendError` and logged without
    its content; the queued messages are still delivered afterwards.
    """
    gate, failures = Gate(), Failures()
    dispatcher = Dispatcher(gate, queue_size=3, workers=1)
    dispatcher.submit(message(0), on_failure=failures)
    await gate.wait_started(1)  # the one worker is now busy
    for number in (1, 2, 3):
        dispatcher.submit(message(number), on_failure=failures)
    assert dispatcher.waiting == 3
    with caplog.at_level(logging.WARNING, logger="keystile.senders"):
        started = time.perf_counter()
        dispatcher.submit(message(4), on_failure=failures)
        assert time.perf_counter() - started < 0.05
        await asyncio.sleep(0.01)  # the report runs in the background
    assert [(to, type(error), str(error)) for to, error in failures.reports] == [
        (
            "user4@example.com",
            SendError,
            "The message could not be delivered: the send queue is full.",
        )
    ]
    assert "the send queue is full" in caplog.text
    assert SECRET not in caplog.text
    assert "user4" not in caplog.text
    assert gate.delivered == []  # the answer did not wait for any delivery
    gate.open()
    await dispatcher.drain()
    assert gate.delivered == [f"user{n}@example.com" for n in range(4)]
    assert len(failures.reports) == 1
    await dispatcher.aclose()


async def test_the_queue_takes_messages_again_once_a_worker_frees_a_slot() -> None:
    """The bound counts messages waiting, not messages ever sent."""
    gate, failures = Gate(open_=True), Failures()
    dispatcher = Dispatcher(gate, queue_size=2, workers=1)
    for round_ in range(5):
        dispatcher.submit(message(2 * round_), on_failure=failures)
        dispatcher.submit(message(2 * round_ + 1), on_failure=failures)
        await dispatcher.drain()
    assert len(gate.delivered) == 10
    assert failures.reports == []
    await dispatcher.aclose()


async def test_discarded_jobs_take_no_slot_from_real_messages() -> None:
    """A flood of discards (unknown identities) neither fills the queue nor sends anything.

    Real messages still get every slot; discards beyond their own allowance
    are dropped silently (nothing was to be sent, so nothing is reported).
    """
    gate, failures = Gate(), Failures()
    dispatcher = Dispatcher(gate, queue_size=2, workers=1)
    dispatcher.submit(message(0), on_failure=failures)
    await gate.wait_started(1)
    for number in range(100, 110):
        dispatcher.submit(message(number), on_failure=failures, discard=True)
    dispatcher.submit(message(1), on_failure=failures)
    dispatcher.submit(message(2), on_failure=failures)
    assert dispatcher.waiting == 2
    gate.open()
    await dispatcher.drain()
    assert gate.delivered == [f"user{n}@example.com" for n in range(3)]
    assert failures.reports == []
    await dispatcher.aclose()


async def test_a_discarded_job_goes_through_a_worker_and_sends_nothing() -> None:
    """A discard is queued and taken like a real message (same work), but never sent."""
    gate, failures = Gate(), Failures()
    dispatcher = Dispatcher(gate, queue_size=5, workers=1)
    dispatcher.submit(message(0), on_failure=failures)
    await gate.wait_started(1)
    dispatcher.submit(message(1), on_failure=failures, discard=True)
    drained = asyncio.create_task(dispatcher.drain())
    await asyncio.sleep(0.02)
    assert not drained.done()  # the discard waits its turn behind the busy worker
    gate.open()
    await drained
    assert gate.started == ["user0@example.com"]
    assert failures.reports == []
    await dispatcher.aclose()


async def test_no_more_deliveries_run_at_once_than_there_are_workers() -> None:
    """Ten messages with three workers: three sends at a time, all ten delivered."""
    gate, failures = Gate(), Failures()
    dispatcher = Dispatcher(gate, queue_size=100, workers=3)
    for number in range(10):
        dispatcher.submit(message(number), on_failure=failures)
    await gate.wait_started(3)
    await asyncio.sleep(0.02)
    assert gate.running == 3
    gate.open()
    await dispatcher.drain()
    assert gate.most_running == 3
    assert sorted(gate.delivered) == sorted(f"user{n}@example.com" for n in range(10))
    await dispatcher.aclose()


async def test_messages_start_in_the_order_they_were_submitted() -> None:
    """First in, first out: with one worker they are also delivered in that order."""
    for workers in (1, 4):
        gate, failures = Gate(open_=True), Failures()
        dispatcher = Dispatcher(gate, queue_size=100, workers=workers)
        for number in range(20):
            dispatcher.submit(message(number), on_failure=failures)
        await dispatcher.drain()
        expected = [f"user{n}@example.com" for n in range(20)]
        assert gate.started == expected
        if workers == 1:
            assert gate.delivered == expected
        await dispatcher.aclose()


class Broken:
    """A sender whose every delivery fails."""

    async def send(self, message: Message) -> None:
        raise SendError("relay refused the message")

    async def aclose(self) -> None:
        return None


async def test_a_failed_delivery_is_reported_and_the_worker_keeps_going(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Each failure reaches ``on_failure``; a callback that fails itself is only logged."""
    failures = Failures()

    async def failing_callback(message: Message, error: Exception) -> None:
        raise RuntimeError("audit store down")

    dispatcher = Dispatcher(Broken(), queue_size=10, workers=1)
    with caplog.at_level(logging.WARNING, logger="keystile.senders"):
        dispatcher.submit(message(0), on_failure=failing_callback)
        dispatcher.submit(message(1), on_failure=failures)
        await dispatcher.drain()
    assert [(to, str(error)) for to, error in failures.reports] == [
        ("user1@example.com", "The message could not be delivered: relay refused the message.")
    ]
    assert "recording a failed delivery failed: RuntimeError" in caplog.text
    assert SECRET not in caplog.text
    await dispatcher.aclose()


async def test_drain_waits_for_reports_of_refused_messages() -> None:
    """``drain`` returns only once the failure of a refused message has been recorded."""
    gate, slow_reports = Gate(), []

    async def slow_report(message: Message, error: Exception) -> None:
        await asyncio.sleep(0.05)
        slow_reports.append(message.to)

    dispatcher = Dispatcher(gate, queue_size=1, workers=1)
    dispatcher.submit(message(0), on_failure=slow_report)
    await gate.wait_started(1)
    dispatcher.submit(message(1), on_failure=slow_report)
    dispatcher.submit(message(2), on_failure=slow_report)  # refused
    gate.open()
    await dispatcher.drain()
    assert slow_reports == ["user2@example.com"]
    assert gate.delivered == ["user0@example.com", "user1@example.com"]
    await dispatcher.aclose()


async def test_drain_gives_up_after_its_time_limit() -> None:
    """A delivery that never ends holds ``drain`` for its time limit only."""
    gate = Gate()
    dispatcher = Dispatcher(gate, queue_size=5, workers=1)
    dispatcher.submit(message(0), on_failure=Failures())
    started = time.perf_counter()
    await dispatcher.drain(0.1)
    assert 0.09 < time.perf_counter() - started < 1
    assert gate.delivered == []
    await dispatcher.aclose(0.01)


async def test_drain_without_any_message_returns_at_once() -> None:
    """Nothing submitted: nothing to wait for."""
    dispatcher = Dispatcher(Gate(), queue_size=5, workers=1)
    started = time.perf_counter()
    await dispatcher.drain()
    assert time.perf_counter() - started < 0.05


async def test_aclose_stops_the_workers_and_a_later_submit_starts_new_ones() -> None:
    """After ``aclose`` no worker task remains; the sender is left to its owner."""
    gate = Gate(open_=True)
    dispatcher = Dispatcher(gate, queue_size=5, workers=2)
    dispatcher.submit(message(0), on_failure=Failures())
    names = {task.get_name() for task in asyncio.all_tasks()}
    assert {"keystile-sender-0", "keystile-sender-1"} <= names
    await dispatcher.aclose()
    assert gate.delivered == ["user0@example.com"]
    assert not {t.get_name() for t in asyncio.all_tasks()} & {"keystile-sender-0"}
    assert gate.closed is False
    dispatcher.submit(message(1), on_failure=Failures())
    await dispatcher.drain()
    assert gate.delivered == ["user0@example.com", "user1@example.com"]
    await dispatcher.aclose()


def test_the_queue_belongs_to_the_loop_that_uses_it() -> None:
    """One dispatcher serves successive event loops (a restarted app, successive tests)."""
    gate = Gate(open_=True)
    dispatcher = Dispatcher(gate, queue_size=5, workers=1)

    async def once(number: int) -> None:
        gate._open = asyncio.Event()  # an Event binds to the loop that first waits on it
        gate.open()
        dispatcher.submit(message(number), on_failure=Failures())
        await dispatcher.drain()

    asyncio.run(once(0))
    asyncio.run(once(1))
    assert gate.delivered == ["user0@example.com", "user1@example.com"]


@pytest.mark.parametrize(("queue_size", "workers"), [(0, 1), (1, 0)])
def test_sizes_below_one_are_refused(queue_size: int, workers: int) -> None:
    """A queue or a pool of nothing could never deliver."""
    with pytest.raises(ValueError, match="must be at least 1"):
        Dispatcher(Gate(), queue_size=queue_size, workers=workers)


async def test_every_sender_can_be_closed_without_knowing_its_type() -> None:
    """``aclose`` is part of the Sender protocol; the console sender's does nothing harmful."""
    console = ConsoleSender()
    senders: list[Sender] = [console, Gate(), Broken()]
    for sender in senders:
        await sender.aclose()
    await console.send(message(0))  # the mailbox stays usable for the dev page
    assert len(console.mailbox) == 1
