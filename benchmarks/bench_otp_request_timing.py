"""Does ``POST /auth/user/otp/request`` take longer for a KNOWN identity than an UNKNOWN one?

    .venv/bin/python benchmarks/bench_otp_request_timing.py [--seconds 10] [--connections 16]
        [--workers 1] [--samples 2000] [--rate-limit-backend {database,memory}]

For a known identity (the user exists) the service stores a code AND schedules its
delivery; for an unknown one (no user, registration off) it stores a code nobody receives.
The answer must be the same, in bytes and "as near as can be measured" in time. Every
request uses a fresh identity (each may ask for only 5 codes per 15 minutes): the known
ones are users seeded in this process (``otp_seed.py``), the unknown ones addresses of
the same length that no user has. The sender is Keystile's default, the console sender:
it prints each message to the server's standard output, which the harness sends to
``server.log`` in the temporary directory, so the known path's delivery is a formatted
write to a file (it also keeps the message in the in-memory development mailbox).

1. Load with wrk (throughput and latency under concurrency): the bare route, then one run
   through known identities only, then one through unknown identities only, same
   connections and seconds, each after its own warm-up; ratios known ÷ unknown.
2. Sequential and interleaved (the timing side channel as one client sees it): one
   keep-alive ``httpx.Client`` sends ``--samples`` known and ``--samples`` unknown
   requests in a random order (``--seed``), timing each with ``time.perf_counter_ns``;
   median and mean per kind, the difference of medians with a 95 % bootstrap interval
   (``--resamples``) and a Mann-Whitney U test. Every answer must be 200 with the same
   bytes and the same headers apart from ``Date``.

Afterwards the server log must hold one message per known request and none for an
unknown identity. Exits 1 on any error answer, different answer or delivery mismatch,
2 when the benchmark could not run.
"""

from __future__ import annotations

import argparse
import math
import random
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from harness import (
    BenchmarkError,
    LuaScript,
    Server,
    WrkResult,
    add_rate_limit_backend,
    benchmark_env,
    check_load_options,
    describe_environment,
    format_table,
    install_sigterm_handler,
    load_options,
    measure,
    require_wrk,
    run_wrk,
    running_server,
    write_body_cycle_script,
)
from otp_seed import emails, progress, request_body, seed, seeding_runtime

REQUEST = "/auth/user/otp/request"
EXPECTED_BODY = b'{"status":"ok"}'
PROBE_SECONDS = 2
PROBE_IDENTITIES_PER_WORKER = 5_000
MIN_IDENTITIES = 500
SEQUENTIAL_WARMUP = 100
"""Requests of each kind sent (interleaved) before the sequential measurement, discarded."""
WRK_TIMEOUT_SECONDS = 10
# Three-letter tags: every address has the same length. k… known (seeded), u… unknown.
CHECK = ("kch", "uch")
WRK_WARMUP = ("kwu", "uwu")
WRK_RUN = ("krn", "urn")
SEQ_WARMUP = ("ksw", "usw")
SEQ_RUN = ("ksq", "usq")
PROBE_TAG = "prb"  # unknown identities


class RunFailedError(Exception):
    """The figures are worthless: an error answer, a different answer, a delivery mismatch."""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command-line options."""
    parser = load_options(__doc__.splitlines()[0])
    parser.add_argument(
        "--samples", type=int, default=2000, help="sequential requests of each kind"
    )
    parser.add_argument("--seed", type=int, default=1, help="random order and bootstrap")
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples")
    parser.add_argument(
        "--margin",
        type=float,
        default=3.0,
        help="identities per wrk run: this many times what the probe rate would use",
    )
    add_rate_limit_backend(parser)
    args = parser.parse_args(argv)
    check_load_options(parser, args)
    if args.samples < 10 or args.resamples < 100 or args.margin < 1:
        parser.error("need --samples >= 10, --resamples >= 100, --margin >= 1")
    return args


# --- answers ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """What a client can see of an answer, ``Date`` aside."""

    status: int
    body: bytes
    headers: tuple[tuple[bytes, bytes], ...]

    @classmethod
    def of(cls, response: httpx.Response) -> Answer:
        """The visible parts of ``response``: status, body bytes, headers in order but Date."""
        headers = tuple(
            (name.lower(), value) for name, value in response.headers.raw if name.lower() != b"date"
        )
        return cls(response.status_code, response.content, headers)


def post_request(client: httpx.Client, url: str, email: str) -> tuple[int, Answer]:
    """``POST …/otp/request`` for ``email``: (nanoseconds taken, the answer)."""
    body = request_body(email).encode()
    headers = {"Content-Type": "application/json"}
    started = time.perf_counter_ns()
    response = client.post(url, content=body, headers=headers)
    elapsed = time.perf_counter_ns() - started
    return elapsed, Answer.of(response)


def check_answer(answer: Answer, reference: Answer, email: str) -> None:
    """``answer`` is 200 ``{"status":"ok"}`` and equals ``reference``.

    Raises:
        RunFailedError: it is not.
    """
    if answer.status != 200 or answer.body != EXPECTED_BODY:
        raise RunFailedError(f"{email}: answered {answer.status} {answer.body[:200]!r}")
    if answer != reference:
        raise RunFailedError(
            f"{email}: the answer differs from the first one:\n  {answer}\n  {reference}"
        )


# --- statistics ------------------------------------------------------------------------------


def average_ranks(values: Sequence[float]) -> list[float]:
    """The 1-based rank of each value, ties sharing their average rank."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for position in range(start, end + 1):
            ranks[order[position]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


@dataclass(frozen=True)
class MannWhitney:
    """A two-sided Mann-Whitney U test of ``a`` against ``b`` (normal approximation)."""

    u: float
    z: float
    p: float
    superiority: float
    """P(a random ``a`` > a random ``b``), ties counting half: 0.5 means no shift."""


def mann_whitney(a: Sequence[float], b: Sequence[float]) -> MannWhitney:
    """The U test, with the tie correction of the variance."""
    n1, n2 = len(a), len(b)
    n = n1 + n2
    ranks = average_ranks([*a, *b])
    u1 = sum(ranks[:n1]) - n1 * (n1 + 1) / 2
    counts: dict[float, int] = {}
    for value in (*a, *b):
        counts[value] = counts.get(value, 0) + 1
    ties = sum(t**3 - t for t in counts.values())
    variance = n1 * n2 / 12 * ((n + 1) - ties / (n * (n - 1)))
    z = (u1 - n1 * n2 / 2) / math.sqrt(variance) if variance > 0 else 0.0
    return MannWhitney(u1, z, math.erfc(abs(z) / math.sqrt(2)), u1 / (n1 * n2))


def bootstrap_median_difference(
    a: Sequence[float], b: Sequence[float], *, resamples: int, rng: random.Random
) -> tuple[float, float]:
    """95 % percentile-bootstrap interval of median(a) - median(b)."""
    differences = sorted(
        statistics.median(rng.choices(a, k=len(a))) - statistics.median(rng.choices(b, k=len(b)))
        for _ in range(resamples)
    )
    low = differences[math.floor(0.025 * (resamples - 1))]
    high = differences[math.ceil(0.975 * (resamples - 1))]
    return low, high


# --- the two measurements ----------------------------------------------------------------


@dataclass(frozen=True)
class Identities:
    """The addresses of one measurement: known ones (seeded users), unknown ones (none)."""

    known: list[str]
    unknown: list[str]


def identities(tags: tuple[str, str], count: int) -> Identities:
    """``count`` known and ``count`` unknown addresses, all of the same length."""
    return Identities(emails(tags[0], count), emails(tags[1], count))


def request_script(workdir: Path, addresses: Sequence[str], name: str) -> LuaScript:
    """A wrk script sending one ``POST …/otp/request`` per address, each once."""
    return write_body_cycle_script(
        workdir, (request_body(email) for email in addresses), path=REQUEST, name=name
    )


def probe(server: Server, workdir: Path, args: argparse.Namespace) -> float:
    """Requests per second for unknown identities, in a short wrk run (warms the server)."""
    addresses = emails(PROBE_TAG, PROBE_IDENTITIES_PER_WORKER * args.workers)
    result = run_wrk(
        server.url(REQUEST),
        label=f"POST {REQUEST} (probe)",
        seconds=PROBE_SECONDS,
        connections=args.connections,
        script=request_script(workdir, addresses, "probe"),
        timeout_seconds=WRK_TIMEOUT_SECONDS,
    )
    if result.problems:
        progress(f"the probe run had errors ({', '.join(result.problems)}); sizing from its rate")
    rate = result.requests / max(result.duration_seconds, 0.001)
    progress(f"probe: {rate:.0f} requests/s")
    return rate


def load_runs(
    server: Server,
    workdir: Path,
    args: argparse.Namespace,
    warmup: Identities,
    measured: Identities,
) -> list[WrkResult]:
    """wrk against the bare route, then known identities only, then unknown ones only."""

    def run_kind(kind: str, measured_ids: Sequence[str], warmup_ids: Sequence[str]) -> WrkResult:
        return measure(
            server.url(REQUEST),
            label=f"POST {REQUEST} ({kind})",
            seconds=args.seconds,
            connections=args.connections,
            warmup_seconds=args.warmup,
            script=request_script(workdir, measured_ids, f"run-{kind}"),
            warmup_script=request_script(workdir, warmup_ids, f"warmup-{kind}"),
            timeout_seconds=WRK_TIMEOUT_SECONDS,
        )

    bare = measure(
        server.url("/bench/bare"),
        label="GET /bench/bare",
        seconds=args.seconds,
        connections=args.connections,
        warmup_seconds=args.warmup,
        timeout_seconds=WRK_TIMEOUT_SECONDS,
    )
    known = run_kind("known", measured.known, warmup.known)
    unknown = run_kind("unknown", measured.unknown, warmup.unknown)
    return [bare, known, unknown]


@dataclass(frozen=True)
class Sequential:
    """Per-request latencies of the interleaved run, nanoseconds, in sending order."""

    kinds: list[str]
    latencies_ns: list[int]

    def of(self, kind: str, *, after: str | None = None) -> list[float]:
        """Latencies (µs) of ``kind`` requests; only those right after an ``after`` one."""
        return [
            ns / 1000
            for index, (k, ns) in enumerate(zip(self.kinds, self.latencies_ns, strict=True))
            if k == kind and (after is None or (index > 0 and self.kinds[index - 1] == after))
        ]


def interleaved(
    server: Server, reference: Answer, warmup: Identities, measured: Identities, seed: int
) -> Sequential:
    """Known and unknown requests in a random order over one keep-alive connection.

    Raises:
        RunFailedError: an answer is not 200 ``{"status":"ok"}`` or differs from ``reference``.
    """
    rng = random.Random(seed)
    url = server.url(REQUEST)

    def shuffled(group: Identities) -> list[tuple[str, str]]:
        order = [("known", e) for e in group.known] + [("unknown", e) for e in group.unknown]
        rng.shuffle(order)
        return order

    kinds: list[str] = []
    latencies: list[int] = []
    with httpx.Client(timeout=30.0) as client:
        for phase, group in (("warm-up", warmup), ("measured", measured)):
            order = shuffled(group)
            progress(f"sequential {phase}: {len(order)} requests, one connection")
            for kind, email in order:
                elapsed, answer = post_request(client, url, email)
                check_answer(answer, reference, email)
                if phase == "measured":
                    kinds.append(kind)
                    latencies.append(elapsed)
    return Sequential(kinds, latencies)


def check_console_log(
    log_path: Path, *, known_sent: Sequence[str], known_wrk: WrkResult, all_unknown_tags: str
) -> list[str]:
    """What is wrong with the console sender's output in the server log, if anything.

    Every sequential known address got one message, the known wrk run got at least as
    many as wrk counted answers, and no unknown address got any.
    """
    recipients = re.findall(r"^To: (\S+)$", log_path.read_text(errors="replace"), re.MULTILINE)
    counted: dict[str, int] = {}
    for address in recipients:
        counted[address] = counted.get(address, 0) + 1
    problems = []
    to_unknown = [a for a in counted if re.match(rf"(?:{all_unknown_tags})-", a)]
    if to_unknown:
        problems.append(f"{len(to_unknown)} unknown identities got a message, e.g. {to_unknown[0]}")
    missing = [a for a in known_sent if counted.get(a) != 1]
    if missing:
        problems.append(f"{len(missing)} known identities got no or several messages")
    run_known = sum(1 for a in counted if a.startswith(f"{WRK_RUN[0]}-"))
    if run_known < known_wrk.requests:
        problems.append(f"{run_known} messages for {known_wrk.requests} known wrk requests")
    print(
        f"console sender: {len(recipients)} messages in the server log, all to known "
        f"identities: {not to_unknown}; {run_known} during the measured known wrk run"
    )
    return problems


# --- report ------------------------------------------------------------------------------


def print_load(results: Sequence[WrkResult]) -> list[str]:
    """The wrk table and its ratios; the runs' problems."""
    bare, known, unknown = results
    print(format_table(results))
    print()
    failures = [f"{r.label}: {', '.join(r.problems)}" for r in results if r.problems]
    if failures:
        print("ratios: none; the runs had errors")
        return failures

    def ratios(a: WrkResult, b: WrkResult) -> str:
        return (
            f"req/s {a.requests_per_second / b.requests_per_second:.3f}  "
            f"p50 x{a.p50_ms / b.p50_ms:.2f}  p99 x{a.p99_ms / b.p99_ms:.2f}"
        )

    print(f"known ÷ bare:     {ratios(known, bare)}")
    print(f"unknown ÷ bare:   {ratios(unknown, bare)}")
    print(f"known ÷ unknown:  {ratios(known, unknown)}  (1.000 / x1.00 = no difference)")
    return []


def print_sequential(run: Sequential, *, resamples: int, seed: int) -> None:
    """Medians, means, the difference of medians with its bootstrap interval, the U test."""
    known, unknown = run.of("known"), run.of("unknown")
    print(f"{'kind':<8}  {'n':>5}  {'median µs':>10}  {'mean µs':>10}  {'p90 µs':>10}")
    for kind, values in (("known", known), ("unknown", unknown)):
        p90 = statistics.quantiles(values, n=10)[-1]
        print(
            f"{kind:<8}  {len(values):>5}  {statistics.median(values):>10.1f}  "
            f"{statistics.fmean(values):>10.1f}  {p90:>10.1f}"
        )
    difference = statistics.median(known) - statistics.median(unknown)
    low, high = bootstrap_median_difference(
        known, unknown, resamples=resamples, rng=random.Random(seed)
    )
    test = mann_whitney(known, unknown)
    mean_difference = statistics.fmean(known) - statistics.fmean(unknown)
    print(
        f"\nmedian known - median unknown: {difference:+.1f} µs "
        f"({difference / statistics.median(unknown):+.1%}); mean difference "
        f"{mean_difference:+.1f} µs"
    )
    distinguishable = low > 0 or high < 0
    print(
        f"95 % bootstrap interval of the median difference ({resamples} resamples): "
        f"[{low:+.1f}, {high:+.1f}] µs → "
        + ("distinguishable from noise" if distinguishable else "contains 0: within noise")
    )
    print(
        f"Mann-Whitney U: z = {test.z:+.2f}, two-sided p = {test.p:.3g}, "
        f"P(known slower than unknown) = {test.superiority:.3f} (0.500 = no shift)"
    )
    after_known = [statistics.median(run.of(k, after="known")) for k in ("known", "unknown")]
    after_unknown = [statistics.median(run.of(k, after="unknown")) for k in ("known", "unknown")]
    print(
        "median µs by the previous request's kind (a known request's delivery may run "
        f"after its answer): after known: known {after_known[0]:.1f}, unknown "
        f"{after_known[1]:.1f}; after unknown: known {after_unknown[0]:.1f}, unknown "
        f"{after_unknown[1]:.1f}"
    )


# --- main --------------------------------------------------------------------------------


def first_answers(server: Server) -> Answer:
    """One known and one unknown request must answer alike; that answer.

    Raises:
        RunFailedError: they differ or are not 200 ``{"status":"ok"}``.
    """
    with httpx.Client(timeout=30.0) as client:
        _, known = post_request(client, server.url(REQUEST), emails(CHECK[0], 1)[0])
        _, unknown = post_request(client, server.url(REQUEST), emails(CHECK[1], 1)[0])
    check_answer(known, known, "the known check identity")
    check_answer(unknown, known, "the unknown check identity")
    return known


def run(args: argparse.Namespace) -> int:
    """The benchmark; its exit status."""
    require_wrk()
    backend = args.rate_limit_backend
    with tempfile.TemporaryDirectory(prefix="keystile-bench-otp-timing-") as tmp:
        workdir = Path(tmp)
        env = benchmark_env(workdir, {"KEYSTILE_RATE_LIMIT_BACKEND": backend})
        with seeding_runtime(env) as runtime:
            progress(f"rate-limit backend: {runtime.settings.rate_limit_backend}")
            seq_warmup = identities(SEQ_WARMUP, SEQUENTIAL_WARMUP)
            seq_run = identities(SEQ_RUN, args.samples)
            seed(runtime, [*emails(CHECK[0], 1), *seq_warmup.known, *seq_run.known])
            with running_server(workdir, env, workers=args.workers) as server:
                reference = first_answers(server)
                rate = probe(server, workdir, args)
                wrk_warmup = identities(
                    WRK_WARMUP, max(MIN_IDENTITIES, math.ceil(args.margin * rate * args.warmup))
                )
                wrk_run = identities(
                    WRK_RUN, max(MIN_IDENTITIES, math.ceil(args.margin * rate * args.seconds))
                )
                seed(runtime, [*wrk_warmup.known, *wrk_run.known])
                load = load_runs(server, workdir, args, wrk_warmup, wrk_run)
                sequential = interleaved(server, reference, seq_warmup, seq_run, args.seed)
        problems = check_console_log(
            server.log_path,
            known_sent=seq_run.known,
            known_wrk=load[1],
            all_unknown_tags="|".join(
                [
                    PROBE_TAG,
                    *(tags[1] for tags in (CHECK, WRK_WARMUP, WRK_RUN, SEQ_WARMUP, SEQ_RUN)),
                ]
            ),
        )
        print(f"\nPOST {REQUEST}: known vs unknown identity")
        print(describe_environment())
        print(
            f"{args.workers} worker(s) · SQLite · rate-limit backend {backend} · console sender "
            f"(stdout to server.log) · wrk: {args.connections} connections, {args.seconds} s "
            f"per route after {args.warmup} s warm-up, {len(wrk_run.known)} identities per "
            f"kind (probe {rate:.0f}/s) · sequential: {args.samples} of each kind, one "
            f"keep-alive connection, seed {args.seed}"
        )
        print("\n1. wrk, one run per kind\n")
        problems += print_load(load)
        print("\n2. sequential, interleaved in random order (all answers byte-identical)\n")
        print_sequential(sequential, resamples=args.resamples, seed=args.seed)
        if problems:
            print("\nBENCHMARK FAILED: these figures are worthless:", file=sys.stderr)
            for problem in problems:
                print(f"  {problem}", file=sys.stderr)
            return 1
        return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: the exit status."""
    install_sigterm_handler()
    try:
        return run(parse_args(argv))
    except RunFailedError as error:
        print(f"BENCHMARK FAILED: {error}", file=sys.stderr)
        return 1
    except BenchmarkError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
