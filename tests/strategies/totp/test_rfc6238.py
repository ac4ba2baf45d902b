"""RFC 4226 and RFC 6238 code generation: every published vector, and the time step."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keystile.strategies.totp.rfc6238 import Algorithm, hotp, time_step, totp, totp_at_step

RFC4226_SECRET = b"12345678901234567890"
RFC4226_VALUES = [
    "755224",
    "287082",
    "359152",
    "969429",
    "338314",
    "254676",
    "287922",
    "162583",
    "399871",
    "520489",
]

RFC6238_KEYS: dict[Algorithm, bytes] = {
    "SHA1": b"12345678901234567890",
    "SHA256": b"12345678901234567890123456789012",
    "SHA512": b"1234567890123456789012345678901234567890123456789012345678901234",
}
RFC6238_VECTORS: list[tuple[int, Algorithm, str]] = [
    (59, "SHA1", "94287082"),
    (59, "SHA256", "46119246"),
    (59, "SHA512", "90693936"),
    (1111111109, "SHA1", "07081804"),
    (1111111109, "SHA256", "68084774"),
    (1111111109, "SHA512", "25091201"),
    (1111111111, "SHA1", "14050471"),
    (1111111111, "SHA256", "67062674"),
    (1111111111, "SHA512", "99943326"),
    (1234567890, "SHA1", "89005924"),
    (1234567890, "SHA256", "91819424"),
    (1234567890, "SHA512", "93441116"),
    (2000000000, "SHA1", "69279037"),
    (2000000000, "SHA256", "90698825"),
    (2000000000, "SHA512", "38618901"),
    (20000000000, "SHA1", "65353130"),
    (20000000000, "SHA256", "77737706"),
    (20000000000, "SHA512", "47863826"),
]


@pytest.mark.parametrize(("counter", "expected"), list(enumerate(RFC4226_VALUES)))
def test_rfc4226_appendix_d_vectors(counter: int, expected: str) -> None:
    """Each HOTP value of RFC 4226 Appendix D, counters 0 to 9."""
    assert hotp(RFC4226_SECRET, counter) == expected


@pytest.mark.parametrize(("at", "algorithm", "expected"), RFC6238_VECTORS)
def test_rfc6238_appendix_b_vectors(at: int, algorithm: Algorithm, expected: str) -> None:
    """Each TOTP value of RFC 6238 Appendix B (8 digits, 30 s), by time and through the step."""
    key = RFC6238_KEYS[algorithm]
    assert totp(key, at=at, digits=8, algorithm=algorithm) == expected
    step = time_step(datetime.fromtimestamp(at, UTC))
    assert totp_at_step(key, step, digits=8, algorithm=algorithm) == expected


def test_six_digit_codes_are_the_last_six_of_the_eight() -> None:
    """Truncation keeps leading zeros: 07081804 gives 081804 with 6 digits."""
    assert totp(RFC6238_KEYS["SHA1"], at=1111111109, digits=6) == "081804"


def test_other_periods_divide_time_into_their_own_steps() -> None:
    """With a 60 s period, times 0 and 59 share a code and 60 starts the next step."""
    key = RFC6238_KEYS["SHA1"]
    assert totp(key, at=0, period=60) == totp(key, at=59, period=60) == hotp(key, 0)
    assert totp(key, at=60, period=60) == hotp(key, 1)


def test_time_step_boundaries() -> None:
    """Step T holds [T*X, (T+1)*X); sub-second times round down."""
    start = datetime.fromtimestamp(1111111110, UTC)
    assert time_step(start) == 37037037
    assert time_step(start - timedelta(microseconds=1)) == 37037036
    assert time_step(start + timedelta(seconds=29, microseconds=999999)) == 37037037


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: time_step(datetime(2026, 1, 1)), "aware"),
        (lambda: time_step(datetime(1969, 12, 31, tzinfo=UTC)), "epoch"),
        (lambda: time_step(datetime(2026, 1, 1, tzinfo=UTC), period=0), "period"),
        (lambda: hotp(RFC4226_SECRET, -1), "negative"),
        (lambda: hotp(b"short", 0), "128 bits"),
        (lambda: hotp(RFC4226_SECRET, 0, digits=9), "between 6 and 8"),
        (lambda: hotp(RFC4226_SECRET, 0, algorithm="MD5"), "algorithm"),  # type: ignore[arg-type]
        (lambda: totp(RFC4226_SECRET, at=-1), "epoch"),
    ],
)
def test_unusable_parameters_are_refused(call: object, message: str) -> None:
    """Naive times, negative counters, short keys and unknown hashes raise ValueError."""
    assert callable(call)
    with pytest.raises(ValueError, match=message):
        call()


@given(
    at=st.integers(min_value=0, max_value=2**37),  # datetime ends in year 9999
    period=st.integers(min_value=1, max_value=120),
    digits=st.sampled_from([6, 8]),
    algorithm=st.sampled_from(["SHA1", "SHA256", "SHA512"]),
)
def test_totp_by_time_equals_hotp_of_the_step(
    at: int, period: int, digits: int, algorithm: Algorithm
) -> None:
    """cryptography's TOTP and our exact step agree: TOTP(t) = HOTP(floor(t / X))."""
    key = RFC6238_KEYS[algorithm]
    step = time_step(datetime.fromtimestamp(at, UTC), period=period)
    assert step == at // period
    code = totp(key, at=at, digits=digits, algorithm=algorithm, period=period)
    assert code == totp_at_step(key, step, digits=digits, algorithm=algorithm)
    assert len(code) == digits
    assert code.isdigit()
