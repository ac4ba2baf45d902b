"""The ``mfa-recovery-code`` grant over HTTP next to the bare endpoint, same server, same run.

    .venv/bin/python benchmarks/bench_oauth_recovery.py [--grants 100]

One server (benchmarks/app.py: the real Keystile service plus ``GET /bench/bare``), one
user with TOTP and recovery codes (enrolled through the HTTP routes, code from
``oathtool``), one OAuth client made with ``keystile client create``. Each round asks
the password grant for an MFA token (not timed), then times one ``mfa-recovery-code``
grant (the code the previous grant answered: the chain of rotated codes) and one
``GET /bench/bare``, sequentially over one keep-alive connection, so a noisy neighbour
weighs on both alike. Prints the milliseconds of each (mean, p50, p90) and the ratio
of the means. Exits 1 when a grant failed, 2 when the benchmark could not run.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

from harness import (
    BenchmarkError,
    benchmark_env,
    create_user,
    keystile_command,
    main_of,
    running_server,
)

EMAIL = "bench@example.com"
PASSWORD = "a long enough password"
MFA_RECOVERY = "http://auth0.com/oauth/grant-type/mfa-recovery-code"


def oathtool(secret: str) -> str:
    done = subprocess.run(
        ["oathtool", "--totp", "-b", secret], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def line(label: str, values: Sequence[float]) -> str:
    return (
        f"{label:<24} mean {statistics.mean(values):7.2f} ms  "
        f"p50 {percentile(values, 0.5):7.2f} ms  p90 {percentile(values, 0.9):7.2f} ms"
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--grants", type=int, default=100)
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        env = benchmark_env(
            workdir,
            {
                "KEYSTILE_RECOVERY_CODE_RATE": "100000/1m",
                "KEYSTILE_PASSWORD_SIGN_IN_RATE": "100000/1m",
                "KEYSTILE_PASSWORD_SIGN_IN_ADDRESS_RATE": "100000/1m",
            },
        )
        create_user(EMAIL, PASSWORD, env=env, cwd=workdir)
        created = subprocess.run(
            [*keystile_command(), "client", "create", "bench"],
            env=env,
            cwd=workdir,
            capture_output=True,
            text=True,
            check=False,
        )
        if created.returncode != 0:
            raise BenchmarkError(created.stderr)
        values = dict(row.split(": ", 1) for row in created.stdout.splitlines() if ": " in row)
        client = {"client_id": values["client_id"], "client_secret": values["client_secret"]}
        with running_server(workdir, env) as server, httpx.Client(base_url=server.base_url) as http:
            token = http.post(
                "/auth/user/password/sign_in", json={"user": {"email": EMAIL, "password": PASSWORD}}
            ).json()["token"]
            bearer = {"Authorization": f"Bearer {token}"}
            setup = http.post("/auth/user/totp/setup", headers=bearer).json()
            confirmed = http.post(
                "/auth/user/totp/confirm_setup",
                headers=bearer,
                json={
                    "user": {"setup_token": setup["setup_token"], "code": oathtool(setup["secret"])}
                },
            ).json()
            code = confirmed["recovery_codes"][0]
            grant_ms: list[float] = []
            bare_ms: list[float] = []
            for _ in range(args.grants):
                first = http.post(
                    "/oauth/token",
                    data={
                        "grant_type": "password",
                        "username": EMAIL,
                        "password": PASSWORD,
                        **client,
                    },
                )
                if first.status_code != 403:
                    raise BenchmarkError(f"password grant: {first.status_code} {first.text}")
                mfa = first.json()["mfa_token"]
                started = time.perf_counter()
                answer = http.post(
                    "/oauth/token",
                    data={
                        "grant_type": MFA_RECOVERY,
                        "mfa_token": mfa,
                        "recovery_code": code,
                        **client,
                    },
                )
                grant_ms.append((time.perf_counter() - started) * 1000)
                if answer.status_code != 200:
                    print(f"grant failed: {answer.status_code} {answer.text}", file=sys.stderr)
                    return 1
                code = answer.json()["recovery_code"]
                started = time.perf_counter()
                http.get("/bench/bare")
                bare_ms.append((time.perf_counter() - started) * 1000)
    print(line("mfa-recovery-code grant", grant_ms))
    print(line("GET /bench/bare", bare_ms))
    print(
        f"ratio of means (grant / bare): {statistics.mean(grant_ms) / statistics.mean(bare_ms):.1f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main_of(run, parse_args, None))
