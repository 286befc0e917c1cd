"""Retries with exponential backoff, in one wrapper for every HTTP call (after inspect_ai's should_retry)."""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass, field
from typing import Callable, TypeVar

T = TypeVar("T")


def _env_delay(name: str, default: float) -> float:
    """A delay from the environment (tests and impatient users shorten backoff); bad values fall back to the default."""
    try:
        value = float(os.environ.get(name, default))
    except ValueError:
        return default
    return value if 0 <= value < float("inf") else default


class RetryableError(Exception):
    """A failure that may succeed if tried again (timeout, dropped connection, 429, 5xx)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    base_delay: float = field(default_factory=lambda: _env_delay("PROVENANCE_RETRY_BASE_DELAY", 0.5))
    max_delay: float = field(default_factory=lambda: _env_delay("PROVENANCE_RETRY_MAX_DELAY", 30.0))

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
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
