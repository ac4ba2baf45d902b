"""Sending off the request path, through a bounded queue and a fixed set of workers.

A request for a code answers as soon as the code is stored; delivery happens
later in one of ``workers`` background tasks fed by a queue of at most
``queue_size`` waiting messages. Mail latency and mail failures therefore
change neither the answer nor its timing (they would otherwise tell a caller
whether the identity exists), and a slow or dead mail server costs a bounded
amount of memory instead of one task per request.

A message that finds the queue full is not sent: it is logged (no content)
and reported to its ``on_failure`` callback, which records the failed
delivery, exactly as when the sender itself fails. ``submit`` never waits.

``submit(..., discard=True)`` is the path for an identity that gets no
message. It does the same work as a real submission (a job is queued and a
worker takes it) so that asking costs the same either way, but discarded
jobs are counted against their own allowance: a flood of requests for
unknown identities cannot push real messages out of the queue.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from keystile.senders.base import Message, Sender, SendError

logger = logging.getLogger("keystile.senders")

FailureCallback = Callable[[Message, Exception], Awaitable[None]]

#: Messages that may wait for a worker before new ones are refused.
DEFAULT_QUEUE_SIZE = 1000
#: Deliveries that may run at the same time.
DEFAULT_WORKERS = 4


@dataclass(frozen=True, slots=True)
class _Job:
    message: Message = field(repr=False)
    on_failure: FailureCallback = field(repr=False)
    discard: bool


class Dispatcher:
    """Delivers messages with ``sender`` from a bounded queue drained by ``workers`` tasks.

    The queue and the workers belong to the event loop of the first
    :meth:`submit`; they are started then, not here, so a Dispatcher can be
    built where no loop runs (the composition root, the CLI). A submit from
    another loop (a new test, a restarted server) starts a fresh queue.

    Args:
        sender: does the delivery; its failures go to each job's ``on_failure``.
        queue_size: how many real messages may wait for a worker; one more is
            refused as a failed delivery. Discarded jobs have an allowance of
            the same size of their own.
        workers: how many deliveries run at once.

    Raises:
        ValueError: ``queue_size`` or ``workers`` is less than 1.
    """

    def __init__(
        self,
        sender: Sender,
        *,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        workers: int = DEFAULT_WORKERS,
    ) -> None:
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.sender = sender
        self.queue_size = queue_size
        self.workers = workers
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[_Job] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._waiting = 0  # real messages queued and not yet taken by a worker
        self._decoys = 0  # discarded jobs queued and not yet taken
        self._callbacks: set[asyncio.Task[None]] = set()  # failure reports for refused messages

    @property
    def waiting(self) -> int:
        """Real messages queued and not yet taken by a worker."""
        return self._waiting

    def submit(
        self, message: Message, *, on_failure: FailureCallback, discard: bool = False
    ) -> None:
        """Queue delivery of ``message`` and return at once (never waits, never raises).

        With ``discard`` the same kind of job is queued and a worker takes it,
        but nothing is sent. When the queue already holds ``queue_size`` real
        messages, ``message`` is not sent: a warning is logged and
        ``on_failure`` is called (in a background task) with a
        :class:`SendError`. A discarded job that finds its allowance used up is
        dropped silently: there was nothing to deliver.

        Raises:
            RuntimeError: no event loop is running.
        """
        queue = self._queue_for(asyncio.get_running_loop())
        if discard:
            if self._decoys >= self.queue_size:
                return
            self._decoys += 1
        else:
            if self._waiting >= self.queue_size:
                self._refuse(message, on_failure)
                return
            self._waiting += 1
        queue.put_nowait(_Job(message, on_failure, discard))

    def _queue_for(self, loop: asyncio.AbstractEventLoop) -> asyncio.Queue[_Job]:
        """The queue of ``loop``, starting it and its workers on first use in that loop."""
        if self._queue is None or self._loop is not loop:
            self._loop = loop
            self._queue = asyncio.Queue()  # bounded by the counters, per kind of job
            self._waiting = self._decoys = 0
            self._callbacks = set()
            self._tasks = [
                loop.create_task(self._work(self._queue), name=f"keystile-sender-{number}")
                for number in range(self.workers)
            ]
        return self._queue

    def _refuse(self, message: Message, on_failure: FailureCallback) -> None:
        # Neither the recipient nor the body: the body holds the code.
        logger.warning(
            "the send queue is full (%d messages waiting): a message was not sent",
            self.queue_size,
        )
        error = SendError("the send queue is full")
        task = asyncio.get_running_loop().create_task(self._report(message, error, on_failure))
        self._callbacks.add(task)
        task.add_done_callback(self._callbacks.discard)

    async def _work(self, queue: asyncio.Queue[_Job]) -> None:
        while True:
            job = await queue.get()
            try:
                if job.discard:
                    self._decoys -= 1
                else:
                    self._waiting -= 1
                    await self._deliver(job)
            finally:
                queue.task_done()

    async def _deliver(self, job: _Job) -> None:
        try:
            await self.sender.send(job.message)
        except Exception as error:  # any failure of any sender: log, audit, never raise
            # The type only; the message body holds the code.
            logger.warning("delivery to a recipient failed: %s", type(error).__name__)
            await self._report(job.message, error, job.on_failure)

    @staticmethod
    async def _report(message: Message, error: Exception, on_failure: FailureCallback) -> None:
        try:
            await on_failure(message, error)
        except Exception as callback_error:
            logger.error("recording a failed delivery failed: %s", type(callback_error).__name__)

    async def drain(self, seconds: float = 10.0) -> None:
        """Wait (up to ``seconds``) until every queued message is delivered or reported.

        Used at shutdown and by tests. Returns early when the queue belongs
        to another event loop (nothing of this loop is in flight). What is
        still queued after ``seconds`` stays queued; a warning says how much.
        """
        loop = asyncio.get_running_loop()
        queue = self._queue
        if queue is None or self._loop is not loop:
            return
        try:
            async with asyncio.timeout(seconds):
                await queue.join()
                while self._callbacks:
                    await asyncio.wait(set(self._callbacks))
        except TimeoutError:
            logger.warning(
                "deliveries still pending after %.1f s: %d queued", seconds, self._waiting
            )

    async def aclose(self, seconds: float = 10.0) -> None:
        """Drain (up to ``seconds``), then stop the workers. It does not close the sender.

        A later :meth:`submit` starts a new queue and new workers.
        """
        await self.drain(seconds)
        tasks, self._tasks = self._tasks, []
        if self._loop is asyncio.get_running_loop():  # another loop's tasks died with it
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        self._queue = None
        self._loop = None
