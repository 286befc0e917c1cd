"""Numeric settings from the environment, checked: a value that is not a number is bad input (exit 2), never a crash."""

from __future__ import annotations

import math
import os

from provenance.errors import InputError


def env_int(name: str, default: int, lo: int, hi: int) -> int:
    """An integer in [lo, hi] from the environment variable `name` (unset or empty: `default`)."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InputError(f"environment variable {name}={raw[:40]!r} is not an integer") from None
    if not lo <= value <= hi:
        raise InputError(f"environment variable {name}={value} is out of range (expected {lo} to {hi})")
    return value


def env_float(name: str, default: float, lo: float, hi: float) -> float:
    """A finite number in [lo, hi] from the environment variable `name` (unset or empty: `default`)."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise InputError(f"environment variable {name}={raw[:40]!r} is not a number") from None
    if not math.isfinite(value) or not lo <= value <= hi:
        raise InputError(f"environment variable {name}={raw[:40]!r} is out of range (expected {lo:g} to {hi:g})")
    return value


def check_all() -> None:
    """Validate every numeric setting up front, so a bad one is reported before any work (and never as a bundle fault)."""
    from provenance.models.retry import MAX_DELAY_ENV, BASE_DELAY_ENV

    env_float(BASE_DELAY_ENV, 0.5, 0.0, 3600.0)
    env_float(MAX_DELAY_ENV, 30.0, 0.0, 3600.0)
    env_int("PROVENANCE_MAX_ENDPOINTS", 8, 1, 256)
