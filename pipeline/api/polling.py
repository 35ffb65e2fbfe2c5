"""When to poll and when to retry: pure policies, no clock and no sleeping.

Input: a policy (frozen dataclass) and, for jitter, a `random.Random`.
Output: delays in seconds. The impure loop (the scheduler, the API client) sleeps them, the
way httpx drives an auth flow: the policy decides, the loop acts, and tests read the delays
without waiting.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

# Poll delays are spread by +-10 % so many processes polling the same service drift apart
# instead of arriving together, without making any single poll much later than planned.
POLL_JITTER = 0.1


@dataclass(frozen=True)
class PollPolicy:
    """Delays between polls: `initial` first, then times `factor` up to `cap`, until
    `deadline` seconds have passed in total."""

    initial: float = 2.0
    factor: float = 1.5
    cap: float = 10.0
    deadline: float = 1200.0


# For one loop that polls every task in flight in a single request: a poll costs one
# request whatever the number of tasks, so a short steady interval buys quick detection
# cheaply (a 5 s PixVerse clip takes tens of seconds to make; a poll a second is nothing).
BATCH_POLL = PollPolicy(initial=1.0, factor=1.0, cap=1.0, deadline=1200.0)


# The embedded simulator answers in a second or so: a short steady tick keeps a run brisk.
SIMULATOR_POLL = PollPolicy(initial=0.25, factor=1.0, cap=0.25, deadline=1200.0)


def poll_delays(policy: PollPolicy, rng: random.Random | None = None) -> Iterator[float]:
    """Successive delays before each poll; ends when the next one would pass the deadline.

    Without `rng` the delays are exact; with it each is spread by +-POLL_JITTER.
    """
    elapsed = 0.0
    polls = 0
    while True:
        delay = jittered(poll_delay(policy, polls), rng)
        if elapsed + delay > policy.deadline:
            return
        elapsed += delay
        polls += 1
        yield delay


def poll_delay(policy: PollPolicy, polls: int) -> float:
    """The planned delay before a task's next poll, after it has been polled `polls` times."""
    delay = policy.initial
    for _ in range(min(polls, 64)):  # 64 steps of any factor > 1 reach any cap
        if delay >= policy.cap:
            break
        delay *= policy.factor
    return max(min(delay, policy.cap), 0.0)


def jittered(delay: float, rng: random.Random | None) -> float:
    """`delay` spread by +-POLL_JITTER (exact without `rng`)."""
    if rng is None:
        return max(delay, 0.0)
    return max(delay * rng.uniform(1 - POLL_JITTER, 1 + POLL_JITTER), 0.0)


@dataclass(frozen=True)
class RetryPolicy:
    """At most `attempts` tries of one request; backoff from `base` doubling up to `cap`."""

    attempts: int = 6
    base: float = 0.5
    cap: float = 30.0


def retry_delay(
    policy: RetryPolicy, attempt: int, rng: random.Random, retry_after: float | None
) -> float:
    """Delay before retry number `attempt` (0 = the first retry).

    Exponential backoff with full jitter: uniform in [0, min(cap, base * 2**attempt)].
    A server's `Retry-After` is a floor: never retry sooner than it asked.
    """
    ceiling = min(policy.cap, policy.base * 2.0 ** max(attempt, 0))
    delay = rng.uniform(0.0, ceiling)
    if retry_after is not None and retry_after > delay:
        return float(retry_after)
    return delay


def retries_left(policy: RetryPolicy, attempt: int) -> bool:
    """Whether a request that failed on try number `attempt` (0-based) may be tried again."""
    return attempt + 1 < policy.attempts


# Rounds of a run's own retries, above the client's: the client has already tried a request
# a few times in a few seconds when the run sees it fail, so the run waits longer between.
ROUNDS = RetryPolicy(attempts=1_000_000, base=2.0, cap=30.0)
# How long the service may fail every request before a run stops: long enough to ride out a
# deploy or a network blip, short enough that nobody waits on a dead service for an hour.
PATIENCE = 300.0


@dataclass(frozen=True)
class Outage:
    """Since when (on some clock) every request has failed, if it has; pure and frozen."""

    since: float | None = None

    def failed(self, now: float) -> Outage:
        return self if self.since is not None else Outage(now)

    def succeeded(self) -> Outage:
        return Outage()

    def lasted(self, now: float) -> float:
        return 0.0 if self.since is None else now - self.since

    def beyond(self, patience: float, now: float) -> bool:
        """Whether the outage has lasted longer than `patience` seconds."""
        return self.since is not None and now - self.since > patience
