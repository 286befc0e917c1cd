"""Result objects shared by every test family (in the spirit of scipy.stats result objects)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class ConfidenceInterval:
    low: float
    high: float
    level: float = 0.95


@dataclass(frozen=True)
class TestResult:
    """One test's outcome, in the spirit of scipy.stats result objects."""

    __test__ = False  # not a pytest test class, although its name starts with "Test"

    name: str
    statistic: float | None  # the observed statistic (None when the test was skipped)
    p_value: float | None  # None when the test was skipped
    n: int  # number of probes (or permutations for the weights test)
    null: str  # one line: how the null distribution was built
    effect: float | None = None
    effect_ci: ConfidenceInterval | None = None
    details: dict[str, Any] = field(default_factory=dict)
    top_probes: tuple[str, ...] = ()  # probe ids that drove the result
    skipped: str | None = None  # why the test could not run
    references: tuple[str, ...] = ()

    def confidence_interval(self) -> ConfidenceInterval | None:
        return self.effect_ci

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["top_probes"] = list(self.top_probes)
        d["references"] = list(self.references)
        return d

    @staticmethod
    def skip(name: str, reason: str) -> "TestResult":
        return TestResult(name=name, statistic=None, p_value=None, n=0, null="not run", skipped=reason)
