"""Result objects and the model-level null shared by the behavioural tests (pairs of independent models)."""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from scipy import stats as sps


@dataclass(frozen=True)
class ConfidenceInterval:
    low: float
    high: float
    level: float = 0.95


@dataclass(frozen=True)
class TestResult:
    """One test's outcome, in the spirit of scipy.stats result objects."""

    name: str
    statistic: float  # the observed suspect~reference affinity (or the test's own statistic)
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
        return TestResult(name=name, statistic=float("nan"), p_value=None, n=0, null="not run", skipped=reason)


def logit(x: float, n: int) -> float:
    # Continuity-corrected so that affinities of exactly 0 or 1 stay finite.
    eps = 0.5 / max(n, 1)
    x = min(max(x, eps), 1 - eps)
    return math.log(x / (1 - x))


ANCHORED_MIN_CONTROLS = 3


@dataclass(frozen=True)
class PairNull:
    """The suspect~reference affinity set against affinities of pairs of models independent under H0."""

    observed: float
    null_values: tuple[float, ...]
    null_pairs: tuple[tuple[str, str], ...]
    t: float
    df: int
    p_value: float
    effect: float
    effect_ci: ConfidenceInterval
    rank_p: float
    construction: str  # "anchored" or "all-pairs"


def pair_null_test(per_probe: Mapping[tuple[str, str], np.ndarray], target: tuple[str, str], models: Sequence[str],
                   sd_floor: float = 0.05) -> PairNull:
    """Prediction-interval t-test of the suspect~reference affinity against affinities of independent pairs.

    models = [suspect, reference, *controls]. Under H0 the suspect is one more model built independently of the
    reference, exchangeable with the controls. Two constructions, chosen by the number of controls k alone
    (fixed before any data are seen):

    * anchored (k >= 3): the null values are the controls' affinities to the reference, aff(C_j, R): the same
      statistic computed on models known to be independent of R. df = k - 1; the exact rank p-value
      (1 + #{null >= observed}) / (k + 1) is reported too.
    * all-pairs (k < 3): too few controls for the anchored null, so strength is borrowed from every pair among
      {suspect, reference, controls} except the target, all independent under H0. This adds the assumption that
      pairs of different models are exchangeable; pairs sharing a model are correlated, so df = #models - 2.

    The target is tested against N(mean, s^2 (1 + 1/m)) with Student-t tails, on the logit scale, which carries
    model-to-model variation and not just prompt noise. `sd_floor` keeps a degenerate null (all values alike by
    chance) from producing absurd t statistics.
    """
    n = len(next(iter(per_probe.values())))
    aff = {pair: logit(float(np.mean(v)), n) for pair, v in per_probe.items()}
    obs = aff[target]
    suspect, reference = target
    controls = [m for m in models if m not in target]
    if len(controls) >= ANCHORED_MIN_CONTROLS:
        construction = "anchored"
        null_pairs: tuple[tuple[str, str], ...] = tuple((c, reference) for c in controls)
        df = len(controls) - 1
    else:
        construction = "all-pairs"
        null_pairs = tuple(p for p in itertools.combinations(models, 2) if set(p) != set(target) and p in aff)
        df = max(len(models) - 2, 1)
    null = np.array([aff[p] for p in null_pairs])
    m = len(null)
    mean = float(null.mean())
    s = float(null.std(ddof=1)) if m > 1 else 0.0
    s = max(s, sd_floor)
    scale = s * math.sqrt(1 + 1 / m)
    t = (obs - mean) / scale
    p = float(sps.t.sf(t, df))
    q = float(sps.t.ppf(0.975, df))
    effect = obs - mean
    rank_p = (1 + int(np.sum(null >= obs))) / (m + 1)
    return PairNull(obs, tuple(float(x) for x in null), null_pairs, float(t), df, p, effect,
                    ConfidenceInterval(effect - q * scale, effect + q * scale), rank_p, construction)


def pairwise(models: Sequence[str], sim: Callable[[str, str], np.ndarray]) -> dict[tuple[str, str], np.ndarray]:
    """Per-probe similarity for every unordered pair (keyed both ways)."""
    out: dict[tuple[str, str], np.ndarray] = {}
    for a, b in itertools.combinations(models, 2):
        v = sim(a, b)
        out[(a, b)] = v
        out[(b, a)] = v
    return out
