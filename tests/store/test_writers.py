"""Writer turns on SQLite: one writer at a time across threads and processes, never forever."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from keystile.errors import UnavailableError
from keystile.store.database import Database
from keystile.store.writers import WriterTurns


def test_a_second_process_waits_for_the_turn_and_gives_up_at_the_timeout(tmp_path: Path) -> None:
    """Another process holding the lock file keeps us out; we get in once it lets go."""
    database = str(tmp_path / "k.db")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys\n"
            "from keystile.store.writers import WriterTurns\n"
            f"with WriterTurns({database!r}, timeout_seconds=5).turn():\n"
            "    print('held', flush=True)\n"
            "    sys.stdin.readline()\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdin is not None
    try:
        assert holder.stdout.readline().strip() == "held"
        turns = WriterTurns(database, timeout_seconds=0.2)
        with pytest.raises(UnavailableError), turns.turn():
            pass
        holder.stdin.write("release\n")
        holder.stdin.flush()
        assert holder.wait(timeout=10) == 0
        with turns.turn():
            pass
    finally:
        holder.kill()


def test_threads_of_one_process_take_turns(tmp_path: Path) -> None:
    """While one thread holds the turn another times out; afterwards it gets in."""
    turns = WriterTurns(str(tmp_path / "k.db"), timeout_seconds=0.2)
    entered, release = threading.Event(), threading.Event()

    def hold() -> None:
        with turns.turn():
            entered.set()
            release.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert entered.wait(10)
        with pytest.raises(UnavailableError), turns.turn():
            pass
    finally:
        release.set()
        thread.join()
    with turns.turn():
        pass


def test_every_writer_of_a_busy_process_gets_its_turn(tmp_path: Path) -> None:
    """Eight threads writing at once: every transaction commits, none is lost or refused."""
    db = Database(f"sqlite:///{tmp_path / 'k.db'}", pool_size=8)
    try:
        with db.write() as conn:
            conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        errors: list[BaseException] = []

        def writer(index: int) -> None:
            try:
                for _ in range(25):
                    with db.driver_write() as conn:
                        cursor = conn.connection.cursor()
                        cursor.execute("INSERT INTO t (x) VALUES (?)", (index,))
                        cursor.close()
            except BaseException as error:
                errors.append(error)

        threads = [threading.Thread(target=writer, args=(index,)) for index in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        with db.read() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar_one() == 200
    finally:
        db.dispose()


def test_an_unwritable_lock_file_is_unavailable(tmp_path: Path) -> None:
    """A lock file that cannot be opened is a 503, not a crash."""
    turns = WriterTurns(str(tmp_path / "missing-dir" / "k.db"), timeout_seconds=0.2)
    with pytest.raises(UnavailableError), turns.turn():
        pass
