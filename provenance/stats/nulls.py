"""The model-level null shared by the behavioural families: lineages as units, interactions, and a prediction test.

Three constructions, each written once and unit-tested with known answers:

* `by_lineage`: collapse models of one lineage family into one unit (siblings are not independent controls).
* `interaction`: the suspect-reference interaction of a two-way table (a main effect per model removes each model's
  general agreeableness or competence; lineage shows in the interaction), with cells of related models masked.
* `prediction_test`: the suspect's value against the controls' values, with a variance that carries both the
  spread between lineages and each value's own sampling error (no fixed floor), Student-t with df = units - 1,
  and the exact rank p-value beside it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np
# scipy.special, not scipy.stats: the same functions scipy.stats.t calls (sf = stdtr(df, -t), ppf = stdtrit), bit for
# bit, without the second of import time scipy.stats spends building its docstrings (every CLI process paid it).
from scipy.special import stdtr, stdtrit

from provenance.stats.base import ConfidenceInterval

LEVEL = 0.95


@dataclass(frozen=True)
class PredictionTest:
    """The suspect's value set against a null sample of independent units (one per control lineage)."""

    observed: float
    null_values: tuple[float, ...]
    null_units: tuple[str, ...]
    mean: float
    tau2: float  # between-unit variance, after removing the units' own sampling variance
    scale: float  # standard deviation of (observed - mean) under H0
    t: float
    df: int
    p_value: float  # parametric (Student-t prediction interval)
    rank_p: float  # exact, distribution-free: (1 + #{null >= observed}) / (m + 1); floor 1 / (m + 1)
    effect: float  # observed - mean
    effect_ci: ConfidenceInterval  # confidence interval for the suspect's excess over the controls' expected value


def prediction_test(observed: float, null_values: Sequence[float], *, se_observed: float = 0.0,
                    se_null: Sequence[float] | None = None, units: Sequence[str] | None = None,
                    level: float = LEVEL) -> PredictionTest | None:
    """Upper-tailed test of `observed` against `null_values`; None when fewer than two null units exist.

    Model: value = lineage effect (variance tau^2) + sampling error (variance se^2, from the unit's own prompts).
    tau^2 is estimated as max(0, s^2 - mean(se_null^2)); under H0 observed - mean has variance
    tau^2 + se_observed^2 + (tau^2 + mean(se_null^2)) / m. So identical null values (a discrete statistic at its
    floor) cannot make the test arbitrarily sharp: their sampling error stays in the scale.
    """
    null = np.asarray(null_values, dtype=float)
    m = int(null.size)
    if m < 2 or not math.isfinite(observed) or not np.all(np.isfinite(null)):
        return None
    se_n = np.zeros(m) if se_null is None else np.asarray(se_null, dtype=float)
    w = float(np.mean(se_n ** 2))
    s2 = float(null.var(ddof=1))
    tau2 = max(0.0, s2 - w)
    var = tau2 + se_observed ** 2 + (tau2 + w) / m
    mean = float(null.mean())
    effect = observed - mean
    df = m - 1
    if var <= 0.0:
        # No spread and no sampling error at all: only the rank statement is possible.
        t = math.inf if effect > 0 else (-math.inf if effect < 0 else 0.0)
        p = 0.0 if effect > 0 else (1.0 if effect < 0 else 0.5)
        scale = 0.0
    else:
        scale = math.sqrt(var)
        t = effect / scale
        p = float(stdtr(df, -t))
    rank_p = (1 + int(np.sum(null >= observed))) / (m + 1)
    q = float(stdtrit(df, 0.5 + level / 2))
    ci_sd = math.sqrt(se_observed ** 2 + (tau2 + w) / m)
    return PredictionTest(float(observed), tuple(float(x) for x in null), tuple(units or [str(i) for i in range(m)]),
                          mean, tau2, scale, float(t), df, p, rank_p, effect,
                          ConfidenceInterval(effect - q * ci_sd, effect + q * ci_sd, level))


def rank_p(observed: float, null_values: Sequence[float]) -> float:
    """Exact upper-tail rank p-value with ties counted against the observed value (conservative)."""
    null = np.asarray(null_values, dtype=float)
    return (1 + int(np.sum(null >= observed))) / (null.size + 1)


def by_lineage(values: Mapping[str, float], ses: Mapping[str, float], lineage: Mapping[str, str]
               ) -> tuple[list[str], list[float], list[float]]:
    """One unit per lineage family: the mean of its members' values, and the members' root-mean-square error.

    Siblings share their family's effect, so averaging them does not give an independent replicate; their sampling
    errors share the same prompts, so the unit's error is not divided by the number of members (conservative).
    """
    groups: dict[str, list[str]] = {}
    for key in values:
        groups.setdefault(lineage[key], []).append(key)
    units = sorted(groups)
    vals = [float(np.mean([values[k] for k in groups[u]])) for u in units]
    errs = [float(math.sqrt(np.mean([ses[k] ** 2 for k in groups[u]]))) for u in units]
    return units, vals, errs


def _mean_and_error(per_probe: np.ndarray) -> tuple[float, float] | None:
    """Mean per-probe similarity with a half-probe pseudo-count, and its standard error; None with no probe."""
    v = np.asarray(per_probe, dtype=float)
    v = v[np.isfinite(v)]
    n = int(v.size)
    if n == 0:
        return None
    p = (float(v.sum()) + 0.5) / (n + 1)
    var_mean = (float(v.var(ddof=1)) if n > 1 else 0.25) / n + 1.0 / (4.0 * n * n)
    return p, math.sqrt(var_mean)


def log_affinity(per_probe: np.ndarray) -> tuple[float, float]:
    """log of the mean per-probe similarity, and its standard error (delta method, with a half-probe pseudo-count).

    Log, not logit: two independent models agree on a probe mostly when both give the right answer, so their
    agreement is close to the product of their competences, which the log makes additive (a main effect per model)
    and the interaction then removes. In simulation (bench/sims/null_v2.py) a strong suspect and reference judged
    against weak controls were flagged at alpha = 1% in 31% of null runs on the logit scale and 5% on the log scale.
    The pseudo-count keeps the value and its error finite at zero agreement: a pair that agreed on no probe is not
    known to agree on exactly none, and its error is about one probe's worth, not zero.
    """
    got = _mean_and_error(per_probe)
    if got is None:
        return math.nan, math.nan
    p, se = got
    return math.log(p), se / p


def logit_affinity(per_probe: np.ndarray) -> tuple[float, float]:
    """logit of the mean per-probe similarity and its standard error (for rates on both sides of 1/2: claim rates)."""
    got = _mean_and_error(per_probe)
    if got is None:
        return math.nan, math.nan
    p, se = got
    return math.log(p / (1 - p)), se / (p * (1 - p))


def _cells(row: str, col: str, rows: Sequence[str], cols: Sequence[str], related: Callable[[str, str], bool]
           ) -> tuple[list[tuple[str, str]], list[tuple[str, str]], list[tuple[str, str]]]:
    row_cells = [(row, j) for j in cols if j != col and not related(row, j)]
    col_cells = [(i, col) for i in rows if i != row and not related(i, col)]
    inner = [(i, j) for i in rows for j in cols if i != row and j != col and not related(i, j)]
    return row_cells, col_cells, inner


def interaction(value: Callable[[str, str], Any], row: str, col: str, rows: Sequence[str], cols: Sequence[str],
                related: Callable[[str, str], bool]) -> Any:
    """Double-centred interaction of cell (row, col) in a two-way table: x(row, col) minus row and column effects.

    gamma = x(r, c) - mean_j x(r, j) - mean_i x(i, c) + mean_ij x(i, j), where i runs over `rows` and j over `cols`
    (the target's own row and column left out of the inner mean), and cells of related models (same lineage) are
    left out of every mean. Under an additive model x(i, j) = mu + a_i + b_j + e_ij, gamma has mean zero whatever
    the main effects: a model that agrees with everyone (competent, fluent) or with no one is not mistaken for a
    relative. `value` may return scalars or per-prompt arrays (then gamma is per prompt). NaN when a mean is empty.
    """
    row_cells, col_cells, inner = _cells(row, col, rows, cols, related)
    if not row_cells or not col_cells or not inner:
        return math.nan

    def mean(cells: list[tuple[str, str]]) -> Any:
        return np.mean(np.stack([np.asarray(value(i, j), dtype=float) for i, j in cells]), axis=0)

    return np.asarray(value(row, col), dtype=float) - mean(row_cells) - mean(col_cells) + mean(inner)


def interaction_se(se: Callable[[str, str], float], row: str, col: str, rows: Sequence[str], cols: Sequence[str],
                   related: Callable[[str, str], bool]) -> float:
    """Standard error of `interaction` from each cell's own error, treating cells as independent.

    Cells that share a model are positively correlated and enter the interaction with opposite signs (the target
    against its row and column means), so ignoring their covariance overstates the error: conservative.
    """
    row_cells, col_cells, inner = _cells(row, col, rows, cols, related)
    if not row_cells or not col_cells or not inner:
        return math.nan
    var = se(row, col) ** 2
    for cells in (row_cells, col_cells, inner):
        var += sum(se(i, j) ** 2 for i, j in cells) / len(cells) ** 2
    return math.sqrt(var)


@dataclass(frozen=True)
class Design:
    """Who sits where: the suspect, the reference, and the control lineages (each a unit of the null)."""

    suspect: str
    reference: str
    units: Mapping[str, tuple[str, ...]]  # control lineage id -> its member models (never the suspect's or reference's)

    @property
    def controls(self) -> list[str]:
        return [m for members in self.units.values() for m in members]

    def placebo(self, unit: str) -> "Design":
        """A control lineage in the suspect's seat (its first member), judged against the other lineages."""
        return Design(self.units[unit][0], self.reference, {u: ms for u, ms in self.units.items() if u != unit})


MIN_UNITS = 3  # the interaction needs two other lineages besides the one in the suspect's seat
UNKNOWN_LINEAGE = "unknown"  # as in provenance.evidence; not imported, so stats/ stays below the evidence layer


def lineage_unit(model: str, lineage: Mapping[str, str | None]) -> str:
    """A model's unit of the null: its lineage, or the model itself when the lineage is unknown (two models of unknown
    lineage are never pooled into one "unknown" unit)."""
    lin = lineage.get(model)
    return f"{UNKNOWN_LINEAGE}:{model}" if not lin or lin == UNKNOWN_LINEAGE else lin


def unit_interactions(cell: Callable[[str, str], Any], cell_se: Callable[[str, str], float] | None, design: Design,
                      per_prompt: bool) -> tuple[tuple[float, float], list[tuple[str, float, float]]] | None:
    """The suspect's interaction with the reference and each control lineage's, each with its standard error.

    `cell(a, b)` gives the table value for two nodes (node = "suspect", "reference" or a unit id); with
    `per_prompt` it returns arrays over prompts, and errors come from the prompts' spread (the interaction is linear
    in the cells, so this keeps every covariance); otherwise `cell_se` gives each cell's error.
    """
    units = sorted(design.units)
    if len(units) < MIN_UNITS:
        return None
    same = lambda a, b: a == b  # noqa: E731 - distinct nodes are distinct lineages by construction

    def one(row: str, others: list[str]) -> tuple[float, float]:
        rows, cols = [row, *others], ["reference", *others]
        g = interaction(cell, row, "reference", rows, cols, same)
        if per_prompt:
            g = np.asarray(g, dtype=float)
            n = g.size
            return float(g.mean()), float(g.std(ddof=1) / math.sqrt(n)) if n > 1 else math.inf
        assert cell_se is not None
        return float(g), interaction_se(cell_se, row, "reference", rows, cols, same)

    observed = one("suspect", units)
    null = [(u, *one(u, [o for o in units if o != u])) for u in units]
    return observed, null
