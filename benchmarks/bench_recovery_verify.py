"""The in-process cost of verifying a recovery code with 10^4 and with 10^6 codes stored.

    .venv/bin/python benchmarks/bench_recovery_verify.py [--sizes 10000,1000000]
        [--verifies 2000] [--warmup 200] [--chunk 100] [--keys 1] [--seed N]

One verification is what the second-factor step does with a code, minus HTTP and the
brute-force limiter: normalise the typed code, compute its candidate hashes (one keyed
HMAC per key of the hashing ring) and consume it with one conditional ``UPDATE`` in its
own ``driver_write`` transaction on SQLite (``BEGIN IMMEDIATE … COMMIT``).

For each size a temporary SQLite file is migrated and filled with that many codes: the
filler (10 codes per user, random 64-hex-digit hashes, which is what stored HMACs look
like) goes in with ``executemany`` in one transaction; then the measured users get real
batches from ``generate_batch`` stored with ``replace_batch``. Every measured verify
uses a distinct, unused code, in a shuffled order, and must succeed. The sizes are
measured interleaved, ``--chunk`` verifies at a time, so a noisy neighbour on the
machine weighs on both alike.

Prints per size the microseconds per verify (mean, p50, p90, p99) and the ratio of the
largest size to the smallest (the aim: at most 1.2, since the hash carries the user id
and the lookup is one unique-index probe). Exits 1 when a verify failed, 2 when the
benchmark could not run.
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from harness import BenchmarkError, main_of
from keystile.crypto.keyring import KeyRing
from keystile.store import migrate
from keystile.store import recovery_codes as store
from keystile.store.database import Database
from keystile.store.tables import recovery_codes, users
from keystile.strategies.recovery_code import core
from keystile.strategies.recovery_code.config import RecoveryCodeConfig

AIM = 1.2
CODES_PER_FILLER_USER = 10
FILL_BATCH = 50_000
"""Rows per ``executemany`` call; all of them in one transaction."""
NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,1000000", help="stored codes, comma-separated")
    parser.add_argument("--verifies", type=int, default=2000, help="measured verifies per size")
    parser.add_argument("--warmup", type=int, default=200, help="unmeasured verifies per size")
    parser.add_argument("--chunk", type=int, default=100, help="verifies per turn of a size")
    parser.add_argument("--keys", type=int, default=1, help="keys in the hashing ring")
    parser.add_argument("--seed", type=int, default=None, help="shuffle seed")
    args = parser.parse_args(argv)
    try:
        args.sizes = sorted({int(part) for part in args.sizes.split(",") if part.strip()})
    except ValueError:
        parser.error("--sizes takes whole numbers, comma-separated")
    if (
        len(args.sizes) < 2
        or args.verifies < 1
        or args.warmup < 0
        or args.chunk < 1
        or args.keys < 1
        or args.sizes[0] < _target_rows(args.verifies + args.warmup)
    ):
        parser.error(
            "need two sizes or more, each at least --verifies + --warmup, and positive "
            "--verifies, --chunk and --keys"
        )
    return args


@dataclass
class Size:
    """One database and what has been measured on it."""

    stored: int
    db: Database
    pending: list[tuple[uuid.UUID, str]]
    timings_ns: list[int] = field(default_factory=list)
    failures: int = 0


def _converters(table: Any, names: Sequence[str], db: Database) -> list[Any]:
    """Each column's bind conversion on this dialect (a UUID to hex text, a datetime to text)."""
    dialect = db.engine.dialect
    return [table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names]


def _convert(converters: Sequence[Any], values: Sequence[Any]) -> tuple[Any, ...]:
    return tuple(
        convert(value) if convert is not None else value
        for convert, value in zip(converters, values, strict=True)
    )


def _filler_rows(count: int, key_id: str) -> Iterator[tuple[list[Any], list[list[Any]]]]:
    """Users and their codes, ``FILL_BATCH`` codes at a time."""
    made = 0
    while made < count:
        user_rows: list[list[Any]] = []
        code_rows: list[list[Any]] = []
        for _ in range(min(FILL_BATCH, count - made) // CODES_PER_FILLER_USER or 1):
            user_id = uuid.uuid4()
            user_rows.append([user_id, f"filler-{user_id.hex}@bench.example", NOW, NOW])
            batch_id = secrets.token_hex(16)
            for _ in range(min(CODES_PER_FILLER_USER, count - made)):
                code_rows.append([user_id, secrets.token_hex(32), key_id, batch_id, NOW])
                made += 1
        yield user_rows, code_rows


def fill(db: Database, count: int, key_id: str) -> None:
    """Store ``count`` filler codes with ``executemany``, in one transaction."""
    user_columns = ("id", "email", "created_at", "updated_at")
    code_columns = ("user_id", "code_hash", "key_id", "batch_id", "created_at")
    user_convert = _converters(users, user_columns, db)
    code_convert = _converters(recovery_codes, code_columns, db)
    insert_user = f"INSERT INTO {users.name} ({', '.join(user_columns)}) VALUES (?, ?, ?, ?)"  # noqa: S608
    insert_code = (
        f"INSERT INTO {recovery_codes.name} ({', '.join(code_columns)}) "  # noqa: S608
        "VALUES (?, ?, ?, ?, ?)"
    )
    with db.driver_write() as conn:
        cursor = conn.connection.cursor()
        try:
            for user_rows, code_rows in _filler_rows(count, key_id):
                cursor.executemany(insert_user, [_convert(user_convert, r) for r in user_rows])
                cursor.executemany(insert_code, [_convert(code_convert, r) for r in code_rows])
        finally:
            cursor.close()


def seed_targets(db: Database, ring: KeyRing, codes_needed: int) -> list[tuple[uuid.UUID, str]]:
    """Users with real batches, stored as the service stores them; their codes as typed."""
    config = RecoveryCodeConfig()
    pairs: list[tuple[uuid.UUID, str]] = []
    with db.driver_write() as conn:
        cursor = conn.connection.cursor()
        user_convert = _converters(users, ("id", "email", "created_at", "updated_at"), db)
        try:
            while len(pairs) < codes_needed:
                user_id = uuid.uuid4()
                cursor.execute(
                    f"INSERT INTO {users.name} (id, email, created_at, updated_at) "  # noqa: S608
                    "VALUES (?, ?, ?, ?)",
                    _convert(
                        user_convert, [user_id, f"bench-{user_id.hex}@bench.example", NOW, NOW]
                    ),
                )
                shown = core.generate_batch(config)
                normalised = [core.normalize(code) or "" for code in shown]
                store.replace_batch(
                    conn,
                    user_id,
                    core.hashes_for_storage(ring, user_id, normalised),
                    core.new_batch_id(),
                    NOW,
                )
                pairs.extend((user_id, code) for code in shown)
        finally:
            cursor.close()
    return pairs[:codes_needed]


def verify(db: Database, ring: KeyRing, user_id: uuid.UUID, typed: str) -> bool:
    """One verification: normalise, hash under every ring key, consume in one transaction."""
    normalised = core.normalize(typed)
    if normalised is None:
        return False
    candidates = core.candidate_hashes(ring, user_id, normalised)
    with db.driver_write() as conn:
        return store.consume(conn, user_id, candidates, NOW)


def run_turns(sizes: Sequence[Size], ring: KeyRing, count: int, chunk: int, *, timed: bool) -> None:
    """``count`` verifies per size, ``chunk`` at a time, taking turns."""
    done = 0
    while done < count:
        step = min(chunk, count - done)
        for size in sizes:
            for _ in range(step):
                user_id, typed = size.pending.pop()
                started = time.perf_counter_ns()
                ok = verify(size.db, ring, user_id, typed)
                elapsed = time.perf_counter_ns() - started
                if timed:
                    size.timings_ns.append(elapsed)
                if not ok:
                    size.failures += 1
        done += step


def _target_rows(codes_needed: int) -> int:
    """The rows :func:`seed_targets` stores for ``codes_needed`` codes: whole batches of 10."""
    batch = RecoveryCodeConfig().codes_per_batch
    return -(-codes_needed // batch) * batch


def _percentile(values: Sequence[int], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] / 1000


def run(args: argparse.Namespace) -> int:
    """Build every size, measure them interleaved, print the table and the ratio."""
    rng = random.Random(args.seed)
    ring = KeyRing(secrets.token_urlsafe(32) for _ in range(args.keys))
    print(
        f"recovery-code verify · {datetime.now(UTC):%Y-%m-%d %H:%M UTC} · {os.cpu_count()} CPUs"
        f" · python {sys.version.split()[0]} · hashing keys {args.keys}"
    )
    with tempfile.TemporaryDirectory(prefix="keystile-bench-rc-") as folder:
        sizes: list[Size] = []
        try:
            for stored in args.sizes:
                db = Database(f"sqlite:///{Path(folder) / f'codes-{stored}.db'}", pool_size=2)
                size = Size(stored=stored, db=db, pending=[])
                sizes.append(size)
                migrate.upgrade(db)
                needed = args.verifies + args.warmup
                started = time.perf_counter()
                fill(db, stored - _target_rows(needed), ring.current.kid)
                size.pending = seed_targets(db, ring, needed)
                rng.shuffle(size.pending)
                with db.read() as conn:
                    rows = conn.execute(
                        select(func.count()).select_from(recovery_codes)
                    ).scalar_one()
                    # Both sizes start measuring with an empty write-ahead log.
                    conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
                if rows != stored:
                    raise BenchmarkError(f"stored {rows:,} codes instead of {stored:,}")
                print(
                    f"  {stored:>9,} codes stored in {time.perf_counter() - started:5.1f} s "
                    f"({Path(folder, f'codes-{stored}.db').stat().st_size / 2**20:,.0f} MiB)"
                )
            run_turns(sizes, ring, args.warmup, args.chunk, timed=False)
            run_turns(sizes, ring, args.verifies, args.chunk, timed=True)
        finally:
            for size in sizes:
                size.db.dispose()
    return report(sizes)


def report(sizes: Sequence[Size]) -> int:
    """Print the table and the ratio; the exit status (1 when any verify failed)."""
    headers = ("mean µs", "p50 µs", "p90 µs", "p99 µs")
    print(f"\n  {'stored codes':>12}  {'verifies':>8}  " + "  ".join(f"{h:>8}" for h in headers))
    for size in sizes:
        figures = (
            statistics.fmean(size.timings_ns) / 1000,
            *(_percentile(size.timings_ns, fraction) for fraction in (0.5, 0.9, 0.99)),
        )
        print(
            f"  {size.stored:>12,}  {len(size.timings_ns):>8,}  "
            + "  ".join(f"{figure:>8.1f}" for figure in figures)
        )
    small, large = sizes[0], sizes[-1]
    ratio_mean = statistics.fmean(large.timings_ns) / statistics.fmean(small.timings_ns)
    ratio_p50 = _percentile(large.timings_ns, 0.5) / _percentile(small.timings_ns, 0.5)
    verdict = "within" if max(ratio_mean, ratio_p50) <= AIM else "ABOVE"
    print(
        f"\n  ratio {large.stored:,} / {small.stored:,}: mean {ratio_mean:.2f}x, "
        f"p50 {ratio_p50:.2f}x ({verdict} the {AIM}x aim)"
    )
    failures = sum(size.failures for size in sizes)
    if failures:
        print(f"\n  FAILED: {failures} verifies of unused codes did not succeed", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: exit status 2, with one line, when the benchmark could not run."""
    return main_of(run, parse_args, argv)


if __name__ == "__main__":
    sys.exit(main())
