"""Figures for the report: each test's observed statistic against its null, and per-probe similarity."""

from __future__ import annotations

import io
from typing import Any

import numpy as np


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 9, "svg.hashsalt": "provenance"})
    return plt


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    # No software/date metadata, so re-rendering the same bundle gives identical bytes.
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    _plt().close(fig)
    return buf.getvalue()


def null_figure(test: dict[str, Any], suspect: str, reference: str) -> bytes | None:
    """Behavioural tests: the null pairs' logit affinities, the t prediction density, and the observed pair."""
    from scipy.special import gammaln

    d = test.get("details") or {}
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.2, 2.6))
    if test["name"] == "weight_alignment":
        null = np.asarray(d.get("null_distribution") or [])
        if null.size == 0:
            return None
        ax.hist(null, bins=40, color="#9db4cf", label="permuted hidden units (null)")
        ax.axvline(test["statistic"], color="#b2182b", lw=2, label=f"observed {test['statistic']:.3f}")
        ax.set_xlabel("mean correlation of matched MLP units")
    else:
        null = np.asarray(d.get("null_values") or [])
        if null.size == 0:
            return None
        obs = d["observed"]
        # The null exactly as the test used it: its mean and scale (lineage spread plus sampling error), df.
        m, scale, df = float(d.get("null_mean", null.mean())), float(d.get("null_scale") or 1e-9), d["df"]
        lo, hi = min(null.min(), obs) - 3 * scale, max(null.max(), obs) + 3 * scale
        xs = np.linspace(lo, hi, 400)
        z = (xs - m) / scale  # Student's t density, written out (scipy.stats costs a second of import per process)
        dens = np.exp(gammaln((df + 1) / 2) - gammaln(df / 2) - 0.5 * np.log(df * np.pi)
                      - (df + 1) / 2 * np.log1p(z * z / df))
        ax.plot(xs, dens / scale, color="#4a6fa5", label=f"null (t, df={df})")
        ax.plot(null, np.zeros_like(null), "o", color="#4a6fa5", ms=7, alpha=0.8, label="control lineages")
        ax.axvline(obs, color="#b2182b", lw=2, label="suspect ~ reference")
        ax.set_xlabel(d.get("scale", "statistic"))
        ax.set_yticks([])
    ax.set_title(f"{test['name']}: {suspect} vs {reference}", fontsize=9)
    ax.legend(fontsize=7, loc="upper left", frameon=False)
    return _png(fig)


def per_probe_figure(test: dict[str, Any]) -> bytes | None:
    """Per probe: the suspect's similarity to the reference against its mean similarity to the controls."""
    pp = (test.get("details") or {}).get("per_probe")
    if not pp:
        return None
    x, y = np.asarray(pp["suspect_controls"]), np.asarray(pp["suspect_reference"])
    plt = _plt()
    fig, ax = plt.subplots(figsize=(3.4, 3.2))
    rng = np.random.default_rng(0)  # jitter only, so ties stay visible; fixed for identical re-renders
    j = 0.01 * rng.standard_normal((2, x.size))
    ax.scatter(x + j[0], y + j[1], s=10, alpha=0.6, color="#4a6fa5")
    ax.plot([0, 1], [0, 1], color="grey", lw=1, ls="--")
    ax.set_xlim(-0.05, 1.05)
    ax.set_ylim(-0.05, 1.05)
    ax.set_xlabel("similarity to controls (mean)")
    ax.set_ylabel("similarity to reference")
    above = int(np.sum(y > x))
    ax.set_title(f"{test['name']}: {above}/{x.size} probes above the diagonal", fontsize=8)
    return _png(fig)
