"""Verifying TOTP codes: drift window, replay, malformed input, with codes made by oathtool."""

from __future__ import annotations

import string
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keystile.strategies.totp.core import (
    TotpCheck,
    TotpOutcome,
    new_secret,
    normalize_code,
    verify_totp,
)
from keystile.strategies.totp.rfc6238 import Algorithm, time_step, totp_at_step
from tests.strategies.totp.helpers import needs_oathtool, oathtool

SECRET = bytes(range(20))
NOW = datetime.fromtimestamp(1_700_000_000, UTC)  # 20 s into step 56,666,666
STEP = 56_666_666
STEP_SECONDS = timedelta(seconds=30)


def test_new_secrets_are_160_bits_random_and_refuse_less() -> None:
    """20 random bytes by default, never repeated; fewer than 160 bits is refused."""
    first, second = new_secret(), new_secret()
    assert len(first) == 20
    assert first != second
    assert len(new_secret(32)) == 32
    with pytest.raises(ValueError, match="at least 160 bits"):
        new_secret(19)


@needs_oathtool
def test_a_current_oathtool_code_is_accepted_with_its_step() -> None:
    """The code oathtool shows now passes, and the result names the step to store."""
    assert time_step(NOW) == STEP
    check = verify_totp(SECRET, oathtool(SECRET, NOW), now=NOW)
    assert check == TotpCheck(TotpOutcome.ACCEPTED, STEP)
    assert check.accepted


@needs_oathtool
def test_window_one_accepts_the_neighbouring_steps_only() -> None:
    """Window 1: a code of the previous or next step passes; two steps ago is wrong."""
    previous = oathtool(SECRET, NOW - STEP_SECONDS)
    following = oathtool(SECRET, NOW + STEP_SECONDS)
    two_ago = oathtool(SECRET, NOW - 2 * STEP_SECONDS)
    assert verify_totp(SECRET, previous, now=NOW) == TotpCheck(TotpOutcome.ACCEPTED, STEP - 1)
    assert verify_totp(SECRET, following, now=NOW) == TotpCheck(TotpOutcome.ACCEPTED, STEP + 1)
    assert verify_totp(SECRET, two_ago, now=NOW) == TotpCheck(TotpOutcome.WRONG)
    assert verify_totp(SECRET, two_ago, now=NOW, window=2).step == STEP - 2
    assert verify_totp(SECRET, previous, now=NOW, window=0).outcome is TotpOutcome.WRONG


@needs_oathtool
def test_two_steps_ago_refused_then_next_step_accepted_then_replay_refused() -> None:
    """The issue's sequence: an old code fails; a fresh one passes once; its step never again."""
    old = oathtool(SECRET, NOW - 2 * STEP_SECONDS)
    assert verify_totp(SECRET, old, now=NOW, last_step=STEP - 3).outcome is TotpOutcome.WRONG
    fresh = oathtool(SECRET, NOW)
    accepted = verify_totp(SECRET, fresh, now=NOW, last_step=STEP - 3)
    assert accepted == TotpCheck(TotpOutcome.ACCEPTED, STEP)
    replay = verify_totp(SECRET, fresh, now=NOW + timedelta(seconds=5), last_step=accepted.step)
    assert replay == TotpCheck(TotpOutcome.REPLAYED, STEP)
    later = NOW + STEP_SECONDS
    following = verify_totp(SECRET, oathtool(SECRET, later), now=later, last_step=accepted.step)
    assert following == TotpCheck(TotpOutcome.ACCEPTED, STEP + 1)


@needs_oathtool
def test_an_earlier_step_is_refused_after_a_later_one_was_accepted() -> None:
    """After step T+1 was accepted (a fast clock), the code of T is a replay, not a pass."""
    earlier = oathtool(SECRET, NOW)
    check = verify_totp(SECRET, earlier, now=NOW, last_step=STEP + 1)
    assert check == TotpCheck(TotpOutcome.REPLAYED, STEP)
    assert not check.accepted


@needs_oathtool
@pytest.mark.parametrize(
    ("algorithm", "digits", "period", "size"),
    [
        ("SHA1", 8, 30, 20),
        ("SHA256", 6, 30, 32),
        ("SHA256", 8, 60, 32),
        ("SHA512", 8, 30, 64),
        ("SHA1", 6, 120, 20),
    ],
)
def test_other_algorithms_lengths_and_periods_match_oathtool(
    algorithm: Algorithm, digits: int, period: int, size: int
) -> None:
    """oathtool's --totp=sha256/sha512, -d 8 and -s codes pass with those parameters only."""
    secret = bytes(range(size))
    code = oathtool(secret, NOW, digits=digits, algorithm=algorithm, period=period)
    assert len(code) == digits
    check = verify_totp(secret, code, now=NOW, period=period, digits=digits, algorithm=algorithm)
    assert check == TotpCheck(TotpOutcome.ACCEPTED, time_step(NOW, period=period))
    assert verify_totp(secret, code, now=NOW).outcome is TotpOutcome.WRONG


@needs_oathtool
def test_spaces_inside_a_code_are_ignored() -> None:
    """``123 456`` as apps show it, or with spaces around, is the same code."""
    code = oathtool(SECRET, NOW)
    for typed in (f"{code[:3]} {code[3:]}", f"  {code}\t", f"{code[:2]} {code[2:4]} {code[4:]}"):
        assert verify_totp(SECRET, typed, now=NOW).accepted, typed


@pytest.mark.parametrize(
    "code",
    [
        "",
        "12345",
        "1234567",
        "12345a",
        "abcdef",
        "\u0661\u0662\u0663\u0664\u0665\u0666",  # Arabic-Indic digits
        "\uff11\uff12\uff13\uff14\uff15\uff16",  # fullwidth digits
        "+12345",
        "-12345",
        "1" * 10_000,
    ],
)
def test_malformed_codes_are_simply_wrong(code: str) -> None:
    """Wrong length, letters, signs, non-ASCII digits, huge input: wrong, never an error."""
    assert normalize_code(code, 6) is None
    assert verify_totp(SECRET, code, now=NOW) == TotpCheck(TotpOutcome.WRONG)


@needs_oathtool
def test_a_six_digit_code_is_wrong_for_an_eight_digit_authenticator() -> None:
    """The right code at the wrong length is malformed for that authenticator."""
    six = oathtool(SECRET, NOW)
    eight = oathtool(SECRET, NOW, digits=8)
    assert eight.endswith(six)
    assert verify_totp(SECRET, six, now=NOW, digits=8).outcome is TotpOutcome.WRONG
    assert verify_totp(SECRET, eight, now=NOW, digits=8).accepted


def test_a_naive_time_is_a_programming_error() -> None:
    """``now`` must be aware: a naive datetime raises instead of guessing a zone."""
    with pytest.raises(ValueError, match="aware"):
        verify_totp(SECRET, "123456", now=NOW.replace(tzinfo=None))


SECRETS = st.binary(min_size=20, max_size=64)
TIMES = st.integers(min_value=120, max_value=10**10).map(lambda at: datetime.fromtimestamp(at, UTC))
ALGORITHMS = st.sampled_from(["SHA1", "SHA256", "SHA512"])


@settings(max_examples=200)
@given(
    secret=SECRETS,
    now=TIMES,
    period=st.integers(min_value=1, max_value=120),
    digits=st.sampled_from([6, 8]),
    algorithm=ALGORITHMS,
    offset=st.integers(min_value=-1, max_value=1),
)
def test_any_code_of_the_window_is_accepted_once(
    secret: bytes, now: datetime, period: int, digits: int, algorithm: Algorithm, offset: int
) -> None:
    """A code of any step within the window passes with that step, then is a replay."""
    step = time_step(now, period=period) + offset
    code = totp_at_step(secret, step, digits=digits, algorithm=algorithm)
    params = {"now": now, "period": period, "digits": digits, "algorithm": algorithm}
    first = verify_totp(secret, code, **params)  # type: ignore[arg-type]
    assert first.accepted
    # Several steps of the window can share a code by chance; the latest wins.
    assert first.step is not None
    assert first.step >= step
    again = verify_totp(secret, code, last_step=first.step, **params)  # type: ignore[arg-type]
    assert again.outcome is TotpOutcome.REPLAYED


@given(secret=SECRETS, now=TIMES, code=st.text(max_size=20), last_step=st.none() | st.integers())
def test_arbitrary_input_never_raises_and_never_passes_at_or_before_last_step(
    secret: bytes, now: datetime, code: str, last_step: int | None
) -> None:
    """Any text gives one of the three outcomes; nothing at or before last_step passes."""
    check = verify_totp(secret, code, now=now, last_step=last_step)
    assert check.outcome in set(TotpOutcome)
    if check.accepted:
        assert check.step is not None
        assert last_step is None or check.step > last_step
        assert normalize_code(code, 6) is not None


@given(
    secret=SECRETS,
    now=TIMES,
    code=st.text(alphabet=string.digits, min_size=6, max_size=6),
)
def test_a_code_of_no_window_step_is_wrong(secret: bytes, now: datetime, code: str) -> None:
    """A six-digit code equal to none of the window's codes is wrong."""
    step = time_step(now)
    window_codes = {totp_at_step(secret, s) for s in range(step - 1, step + 2)}
    check = verify_totp(secret, code, now=now)
    assert check.accepted == (code in window_codes)
    if code not in window_codes:
        assert check == TotpCheck(TotpOutcome.WRONG)
