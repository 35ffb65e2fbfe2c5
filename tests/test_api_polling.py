"""The pure poll and retry policies: delays only, nothing sleeps."""

from __future__ import annotations

import itertools
import random

from hypothesis import given
from hypothesis import strategies as st

from pipeline.api.polling import (
    BATCH_POLL,
    POLL_JITTER,
    PollPolicy,
    RetryPolicy,
    poll_delays,
    retries_left,
    retry_delay,
)


def test_poll_delays_start_at_initial_and_grow_to_the_cap() -> None:
    delays = list(itertools.islice(poll_delays(PollPolicy()), 8))
    assert delays[:4] == [2.0, 3.0, 4.5, 6.75]
    assert delays[5:] == [10.0, 10.0, 10.0]


def test_poll_delays_end_before_the_deadline_would_pass() -> None:
    delays = list(poll_delays(PollPolicy(initial=1, factor=2, cap=4, deadline=12)))
    assert delays == [1, 2, 4, 4]  # the next 4 would end at 15 > 12
    assert sum(delays) <= 12


def test_batch_poll_is_steady_one_second() -> None:
    delays = list(itertools.islice(poll_delays(BATCH_POLL), 5))
    assert delays == [1.0] * 5


@given(st.floats(0.1, 5), st.floats(1, 3), st.floats(0.1, 20), st.floats(1, 200),
       st.integers(0, 2**32))
def test_jittered_delays_stay_near_the_plan_and_within_the_deadline(
    initial: float, factor: float, cap: float, deadline: float, seed: int
) -> None:
    policy = PollPolicy(initial, factor, cap, deadline)
    planned = poll_delays(policy)
    jittered = list(poll_delays(policy, random.Random(seed)))
    assert sum(jittered) <= deadline
    for plan, got in zip(planned, jittered, strict=False):
        assert plan * (1 - POLL_JITTER) <= got <= plan * (1 + POLL_JITTER) + 1e-9


@given(st.integers(0, 20), st.integers(0, 2**32))
def test_retry_delay_is_full_jitter_under_the_exponential_ceiling(attempt: int, seed: int) -> None:
    policy = RetryPolicy(attempts=6, base=0.5, cap=30.0)
    delay = retry_delay(policy, attempt, random.Random(seed), None)
    assert 0.0 <= delay <= min(30.0, 0.5 * 2**attempt)


def test_retry_delay_never_comes_before_retry_after() -> None:
    rng = random.Random(1)
    assert retry_delay(RetryPolicy(), 0, rng, 7.0) == 7.0
    assert retry_delay(RetryPolicy(base=100, cap=100), 3, random.Random(2), 0.001) >= 0.001


def test_retry_delays_spread_out() -> None:
    """Full jitter: many clients retrying the same failure do not land together."""
    rng = random.Random(3)
    delays = {round(retry_delay(RetryPolicy(), 4, rng, None), 3) for _ in range(50)}
    assert len(delays) > 40


def test_retries_left_counts_the_first_try() -> None:
    policy = RetryPolicy(attempts=3)
    assert [retries_left(policy, a) for a in range(4)] == [True, True, False, False]
