"""The single retry wrapper: bounded attempts, Retry-After honoured, non-retryable errors pass through."""

from __future__ import annotations

import pytest

from provenance.models.retry import RetryableError, RetryPolicy, with_retries


def test_retries_then_succeeds() -> None:
    calls, sleeps = [], []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise RetryableError("429", retry_after=2.0)
        return "ok"

    assert with_retries(flaky, RetryPolicy(attempts=5), sleep=sleeps.append) == "ok"
    assert sleeps == [2.0, 2.0]


def test_gives_up_after_attempts() -> None:
    def down() -> None:
        raise RetryableError("500")

    sleeps: list[float] = []
    with pytest.raises(RetryableError):
        with_retries(down, RetryPolicy(attempts=3, base_delay=0.1), sleep=sleeps.append)
    assert len(sleeps) == 2 and all(0 <= s <= 0.4 for s in sleeps)


def test_other_errors_are_not_retried() -> None:
    calls = []

    def bad() -> None:
        calls.append(1)
        raise ValueError("401")

    with pytest.raises(ValueError):
        with_retries(bad, RetryPolicy(), sleep=lambda s: None)
    assert len(calls) == 1
