"""The database handle: a synchronous SQLAlchemy engine driven from a thread pool.

Why sync drivers in threads rather than async drivers: measured on this
machine class for one short write transaction, sync ``sqlite3`` with
``BEGIN IMMEDIATE`` in a thread pool served 1,690/s (1 worker) against 650/s
for async SQLAlchemy + aiosqlite, whose single connection thread serialises
and then contends on the lock. PostgreSQL uses psycopg 3 through the same
path, so one set of queries serves both.

SQLite runs in WAL mode with a busy timeout. Write transactions start with
``BEGIN IMMEDIATE`` so they take the write lock up front: a transaction that
reads and then writes can otherwise fail with "database is locked" when two
of them upgrade at once, whatever the busy timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from sqlalchemy import Connection, Dialect, Engine, create_engine, event, make_url
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.pool import PoolProxiedConnection

from keystile.errors import UnavailableError
from keystile.store.writers import WriterTurns

P = ParamSpec("P")
R = TypeVar("R")

#: SQLite reads through a memory map of up to this much of the file: a lookup in a large
#: table (a million recovery codes) then costs no read() system call per B-tree page.
MMAP_BYTES = 256 * 1024 * 1024

_WRITE = "keystile_write"
_READ = "keystile_read"


def normalise_url(url: str) -> URL:
    """Pick the sync driver Keystile supports for each backend."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        return parsed.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            raise ValueError(
                "in-memory SQLite is not supported (each pooled connection would see its own "
                "database): use a file, sqlite:///keystile.db"
            )
        return parsed.set(drivername="sqlite+pysqlite")
    raise ValueError(f"unsupported database {backend!r}: use sqlite:/// or postgresql://")


@dataclass(frozen=True, slots=True)
class DriverConnection:
    """A pooled DBAPI connection in a transaction, for :mod:`keystile.store.prepared` statements.

    Shaped like the two attributes of a SQLAlchemy ``Connection`` that a
    prepared statement uses, so either runs one.
    """

    dialect: Dialect
    connection: PoolProxiedConnection


class Database:
    """An engine plus the thread pool its blocking calls run in."""

    def __init__(self, url: str, *, pool_size: int = 10, busy_timeout_seconds: float = 5.0) -> None:
        self.url = normalise_url(url)
        self.dialect = self.url.get_backend_name()
        self._pool_size = pool_size
        self._executor = self._new_executor()
        self._writers: WriterTurns | None = None
        if self.dialect == "sqlite":
            _create_owner_only(self.url.database)
            self.engine = create_engine(
                self.url,
                pool_size=pool_size,
                max_overflow=0,
                pool_timeout=60,
                connect_args={"timeout": busy_timeout_seconds, "check_same_thread": False},
            )
            _configure_sqlite(self.engine, busy_timeout_seconds)
            self._writers = WriterTurns(
                str(self.url.database), timeout_seconds=busy_timeout_seconds
            )
        else:
            self.engine = create_engine(
                self.url,
                pool_size=pool_size,
                max_overflow=0,
                pool_timeout=60,
                pool_pre_ping=True,
                connect_args={"connect_timeout": 5},
            )
        driver = self.engine.dialect.loaded_dbapi
        self._driver_unavailable: type[Exception] = driver.OperationalError
        #: A unique or foreign-key violation, raised by SQLAlchemy or by the driver
        #: under a prepared statement.
        self.integrity_errors: tuple[type[Exception], ...] = (IntegrityError, driver.IntegrityError)

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One write transaction: committed on success, rolled back on error.

        On SQLite the writer first waits for its turn (:mod:`keystile.store.writers`).
        """
        with self._writer_turn(), self._transaction(_WRITE) as conn:
            yield conn

    def _writer_turn(self) -> contextlib.AbstractContextManager[None]:
        return self._writers.turn() if self._writers is not None else contextlib.nullcontext()

    @contextmanager
    def driver_write(self) -> Iterator[DriverConnection]:
        """:meth:`write` for the hot paths: the same transaction, without SQLAlchemy's
        per-connection machinery (see :mod:`keystile.store.prepared`).

        Only :class:`~keystile.store.prepared.Prepared` statements run in it.
        """
        with self._writer_turn(), self._driver_transaction(write=True) as conn:
            yield conn

    @contextmanager
    def driver_read(self) -> Iterator[DriverConnection]:
        """:meth:`read` for the hot paths, as :meth:`driver_write` is to :meth:`write`."""
        with self._driver_transaction(write=False) as conn:
            yield conn

    @contextmanager
    def _driver_transaction(self, *, write: bool) -> Iterator[DriverConnection]:
        with self._translate_errors():
            raw = self.engine.raw_connection()
            try:
                if write and self.dialect == "sqlite":
                    # The sqlite3 module's own transaction handling is off (see
                    # _configure_sqlite): take the write lock up front, as write() does.
                    cursor = raw.cursor()
                    try:
                        cursor.execute("BEGIN IMMEDIATE")
                    finally:
                        cursor.close()
                yield DriverConnection(self.engine.dialect, raw)
                raw.commit()
            except BaseException:
                # A failed rollback leaves the connection to the pool's reset,
                # which discards it if it is broken; the first error is the one to raise.
                with contextlib.suppress(Exception):
                    raw.rollback()
                raise
            finally:
                raw.close()

    @contextmanager
    def _transaction(self, kind: str) -> Iterator[Connection]:
        with self._translate_errors(), self.engine.connect() as conn:
            conn = conn.execution_options(**{kind: True})
            with conn.begin():
                yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for reading.

        On SQLite no transaction is opened: each statement is atomic on its
        own and a hot read (the token check of every authenticated call) saves
        the BEGIN/COMMIT round trips. Callers that need several statements to
        see one snapshot use :meth:`write`.
        """
        with self._transaction(_READ) as conn:
            yield conn

    @contextmanager
    def _translate_errors(self) -> Iterator[None]:
        try:
            yield
        except OperationalError as error:
            # Connection refused, database locked past the busy timeout, disk I/O:
            # the caller answers 503 and nothing is accepted.
            raise UnavailableError() from error
        except self._driver_unavailable as error:
            # The same, raised by the driver itself under a prepared statement.
            raise UnavailableError() from error
        except DBAPIError as error:
            if error.connection_invalidated:
                raise UnavailableError() from error
            raise

    async def run(self, func: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """Run blocking ``func`` in the database thread pool.

        The pool has as many threads as the engine has connections, so a
        thread never waits for a connection. It is a plain executor rather
        than ``anyio.to_thread``: on the sign-in path (two hops per request)
        anyio's per-call bookkeeping cost about a fifth of the request's CPU
        (measured: 600 -> 750 sign-ins/s). If the caller is cancelled, the
        call still runs to its end (a transaction is never cut in half).
        """
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(func, *args, **kwargs))

    async def transact(
        self, work: Callable[[DriverConnection], R], *, retry_on_conflict: bool = False
    ) -> R:
        """Run ``work`` as one short write transaction in the pool: a unit of work.

        ``work`` composes repository functions (each takes the connection and
        runs :class:`~keystile.store.prepared.Prepared` statements); it is
        committed when it returns and rolled back when it raises, so an
        attempt's writes (its limiter hit, the code consumed, the user
        registered, the session row, the audit record) land together or not
        at all. On SQLite the transaction is one writer turn.

        ``retry_on_conflict``: after a unique or foreign-key violation, run
        ``work`` once more in a new transaction (it must then find what the
        winning transaction wrote, e.g. the user a concurrent first sign-in
        created). Only for work that is safe to repeat from the start.

        Raises:
            UnavailableError: the database cannot be reached or stayed locked.
        """
        return await self.run(self._transact, work, retry_on_conflict)

    def _transact(self, work: Callable[[DriverConnection], R], retry_on_conflict: bool) -> R:
        try:
            with self.driver_write() as conn:
                return work(conn)
        except self.integrity_errors:
            if not retry_on_conflict:
                raise
        with self.driver_write() as conn:
            return work(conn)

    async def query(self, work: Callable[[DriverConnection], R]) -> R:
        """Run read-only ``work`` in the pool (no write lock, no transaction on SQLite)."""
        return await self.run(self._query, work)

    def _query(self, work: Callable[[DriverConnection], R]) -> R:
        with self.driver_read() as conn:
            return work(conn)

    def dispose(self) -> None:
        """Close every pooled connection; the threads end once their work is done.

        Like the engine, the handle stays usable: new work gets new threads.
        """
        executor, self._executor = self._executor, self._new_executor()
        executor.shutdown(wait=False)
        self.engine.dispose()

    def _new_executor(self) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(self._pool_size, thread_name_prefix="keystile-db")


def _create_owner_only(path: str | None) -> None:
    """Create the SQLite file 0600 if it does not exist yet, whatever the umask.

    It holds password hashes and the audit log. SQLite gives its -wal and -shm
    files the database file's permissions, so those follow.
    """
    if not path:
        return
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _configure_sqlite(engine: Engine, busy_timeout_seconds: float) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide where transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_seconds * 1000)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        options = conn.get_execution_options()
        if options.get(_WRITE, False):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        elif not options.get(_READ, False):
            conn.exec_driver_sql("BEGIN")


class HasDatabase(Protocol):
    """A repository backed by a :class:`Database`."""

    db: Database


S = TypeVar("S", bound=HasDatabase)


def in_thread(
    method: Callable[Concatenate[S, P], R],
) -> Callable[Concatenate[S, P], Coroutine[Any, Any, R]]:
    """Turn a blocking repository method into an awaitable that runs in the database pool."""

    async def wrapper(repository: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return await repository.db.run(method, repository, *args, **kwargs)

    functools.update_wrapper(wrapper, method)
    return wrapper
