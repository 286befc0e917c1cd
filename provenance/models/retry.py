"""Retries with exponential backoff, in one wrapper for every HTTP call (after inspect_ai's should_retry)."""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field
from typing import Callable, TypeVar

from provenance.envvars import env_float

T = TypeVar("T")
BASE_DELAY_ENV, MAX_DELAY_ENV = "PROVENANCE_RETRY_BASE_DELAY", "PROVENANCE_RETRY_MAX_DELAY"


def _env_delay(name: str, default: float) -> float:
    """A delay from the environment (tests and impatient users shorten backoff); a bad value is an InputError."""
    return env_float(name, default, 0.0, 3600.0)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header; None for anything but a finite, non-negative number (HTTP dates included)."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


class RetryableError(Exception):
    """A failure that may succeed if tried again (timeout, dropped connection, 429, 5xx)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    base_delay: float = field(default_factory=lambda: _env_delay(BASE_DELAY_ENV, 0.5))
    max_delay: float = field(default_factory=lambda: _env_delay(MAX_DELAY_ENV, 30.0))

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None and math.isfinite(retry_after):
            return min(max(retry_after, 0.0), self.max_delay)
        # Full jitter: spreads retries of concurrent clients; does not touch any result, so it need not be seeded.
        return random.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))


def with_retries(fn: Callable[[], T], policy: RetryPolicy, on_retry: Callable[[int, Exception], None] | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> T:
    """Call fn until it succeeds or raises a non-retryable error; re-raise the last error when attempts run out."""
    for attempt in range(policy.attempts):
        try:
            return fn()
        except RetryableError as exc:
            if attempt == policy.attempts - 1:
                raise
            if on_retry:
                on_retry(attempt + 1, exc)
            sleep(policy.delay(attempt, exc.retry_after))
    raise AssertionError("unreachable")
