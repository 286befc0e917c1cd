"""Group-sequential audits: looks at fractions of the budget, alpha spent across looks by a Bonferroni bound."""

from __future__ import annotations

from provenance.verdict import MIN_PROBES

# Looks at these fractions of the budget, spending these shares of ALPHA (O'Brien-Fleming-like: little at the early
# looks, most at the last). A look needs MIN_PROBES continuation probes; a dropped look's share moves to the last one.
LOOK_FRACTIONS = (0.25, 0.5, 1.0)
ALPHA_SHARES = (0.1, 0.2, 0.7)
FUTILITY_P = 0.5
SEQUENTIAL_RULE = (
    f"Looks after {', '.join(f'{f:.0%}' for f in LOOK_FRACTIONS)} of the budget, spending "
    f"{', '.join(f'{a:.0%}' for a in ALPHA_SHARES)} of alpha: at look i every p-value is multiplied by "
    f"1 / share_i (Bonferroni over looks, valid whatever the dependence between looks). Stop when a reference is "
    f"flagged (decisive) or when every reference's combined p exceeds {FUTILITY_P} (futile; stopping for futility "
    f"cannot add false positives). `no_evidence` is judged on the p-value before the looks' price."
)


def sequential_schedule(budget: int) -> list[tuple[int, float]]:
    """(budget, alpha share) per look; looks too small to decide on are merged into the last."""
    looks: list[tuple[int, float]] = []
    carried = 0.0
    for frac, share in zip(LOOK_FRACTIONS, ALPHA_SHARES):
        b = max(2, int(round(budget * frac)))
        if frac < 1.0 and (b - b // 2 < MIN_PROBES or (looks and looks[-1][0] == b)):
            carried += share
            continue
        looks.append((b, share))
    b, share = looks[-1]
    looks[-1] = (b, round(share + carried, 9))
    return looks
