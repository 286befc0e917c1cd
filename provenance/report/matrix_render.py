"""The lineage matrix's outputs: CSV, clustered heatmap, lineage graph (PNG) and a self-contained HTML page."""

from __future__ import annotations

import base64
import html
import json
import math
import os
import shutil
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from provenance.fsutil import atomic_write_bytes, atomic_write_json, atomic_write_text
from provenance.report.figures import _plt, _png

COLOURS = {"derived": "#b03a2e", "distilled": "#d68910", "inconclusive": "#7f8c8d", "no_evidence": "#d5dbe3", "independent": "#d5dbe3"}


def _names(results: dict[str, Any]) -> dict[str, str]:
    return {m["spec"]: m["name"] for m in results["models"]}


def score_matrix(results: dict[str, Any]) -> tuple[list[str], np.ndarray]:
    """Symmetric matrix of -log10 adjusted p (0 on the diagonal)."""
    specs = [m["spec"] for m in results["models"]]
    idx = {s: i for i, s in enumerate(specs)}
    m = np.zeros((len(specs), len(specs)))
    for r in results["pairs"]:
        v = -math.log10(max(r["p_value"] if r["p_value"] is not None else 1.0, 1e-300))
        m[idx[r["a"]], idx[r["b"]]] = m[idx[r["b"]], idx[r["a"]]] = v
    return specs, m


def cluster_order(m: np.ndarray) -> list[int]:
    """Leaf order of an average-linkage clustering on the evidence (related models end up side by side)."""
    if len(m) < 3:
        return list(range(len(m)))
    from scipy.cluster.hierarchy import leaves_list, linkage
    from scipy.spatial.distance import squareform

    d = m.max() - m
    np.fill_diagonal(d, 0.0)
    return [int(i) for i in leaves_list(linkage(squareform(d, checks=False), method="average"))]


def heatmap(results: dict[str, Any]) -> bytes:
    plt = _plt()
    specs, m = score_matrix(results)
    order = cluster_order(m)
    names = _names(results)
    labels = [names[specs[i]] for i in order]
    mm = m[np.ix_(order, order)]
    n = len(specs)
    fig, ax = plt.subplots(figsize=(1.2 + 0.55 * n, 1.0 + 0.5 * n))
    im = ax.imshow(mm, cmap="YlOrRd", vmin=0, vmax=max(3.0, float(mm.max())))
    verdict = {(r["a"], r["b"]): r["verdict"] for r in results["pairs"]}
    verdict.update({(b, a): v for (a, b), v in list(verdict.items())})
    for i in range(n):
        for j in range(n):
            if i != j:
                v = verdict[(specs[order[i]], specs[order[j]])]
                mark = {"derived": "W", "distilled": "D", "inconclusive": "?"}.get(v, "")
                ax.text(j, i, mark, ha="center", va="center", fontsize=7, color="black")
    ax.set_xticks(range(n), labels, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(n), labels, fontsize=7)
    cb = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    cb.set_label("-log10 adjusted p", fontsize=7)
    ax.set_title("pairwise lineage evidence (W derived, D distilled, ? inconclusive)", fontsize=8)
    return _png(fig)


def lineage_graph(results: dict[str, Any]) -> bytes:
    """Circular layout; arrows point from parent to student where a test gives direction, dashed when indirect."""
    plt = _plt()
    specs = [m["spec"] for m in results["models"]]
    names = _names(results)
    n = len(specs)
    pos = {s: (math.cos(2 * math.pi * i / n + math.pi / 2), math.sin(2 * math.pi * i / n + math.pi / 2))
           for i, s in enumerate(specs)}
    fig, ax = plt.subplots(figsize=(5.2, 5.2))
    for e in results["edges"]:
        a, b = e["a"], e["b"]
        style = "--" if e["indirect"] else "-"
        colour = COLOURS[e["verdict"]]
        if e["direction"]:
            a, b = e["direction"]["parent"], e["direction"]["child"]
            ax.annotate("", xy=pos[b], xytext=pos[a],
                        arrowprops={"arrowstyle": "-|>", "color": colour, "lw": 1.6, "ls": style, "shrinkA": 14,
                                    "shrinkB": 14})
        else:
            ax.plot([pos[a][0], pos[b][0]], [pos[a][1], pos[b][1]], ls=style, color=colour, lw=1.6)
    for s in specs:
        x, y = pos[s]
        ax.scatter([x], [y], s=260, color="#4a6fa5", zorder=3)
        ax.annotate(names[s], (x, y), xytext=(0, 13 if y >= 0 else -17), textcoords="offset points", ha="center",
                    fontsize=7)
    ax.plot([], [], color=COLOURS["derived"], label="derived (shares weights)")
    ax.plot([], [], color=COLOURS["distilled"], label="distilled (behaviour inherited)")
    ax.plot([], [], color="grey", ls="--", label="indirect (through a third model)")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, -0.14), ncol=2, fontsize=7, frameon=False)
    ax.set_xlim(-1.35, 1.35)
    ax.set_ylim(-1.35, 1.35)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(f"lineage graph ({results['correction'].split(' (')[0]}, alpha {results['alpha']})", fontsize=8)
    return _png(fig)


def pairs_csv(results: dict[str, Any]) -> str:
    import pandas as pd

    names = _names(results)
    rows = []
    for r in results["pairs"]:
        d = r["direction"] or {}
        row = {"a": names[r["a"]], "b": names[r["b"]], "verdict": r["verdict"], "p_adjusted": r["p_value"],
               "p_unadjusted": r["p_value_unadjusted"], "edge": r["edge"], "indirect": r["indirect"],
               "parent": names.get(d.get("parent", ""), ""), "child": names.get(d.get("child", ""), "")}
        for k, v in r["tests_a_as_suspect"].items():
            row[f"{k}_p_a_suspect"] = v
        for k, v in r["tests_b_as_suspect"].items():
            row[f"{k}_p_b_suspect"] = v
        rows.append(row)
    return pd.DataFrame(rows).to_csv(index=False, float_format="%.6g")


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def page(results: dict[str, Any], figures: Sequence[tuple[str, bytes]]) -> str:
    names = _names(results)
    e = html.escape
    edge_rows = "".join(
        f"<tr><td>{e(names[x['a']])}</td><td>{e(names[x['b']])}</td><td>{e(x['verdict'])}</td><td>{x['p_value']:.3g}</td>"
        f"<td>{e(names[x['direction']['parent']] + ' → ' + names[x['direction']['child']]) if x['direction'] else 'not determined'}</td>"
        f"<td>{'indirect' if x['indirect'] else 'direct'}</td></tr>" for x in results["edges"])
    pair_rows = "".join(
        f"<tr><td>{e(names[r['a']])}</td><td>{e(names[r['b']])}</td><td>{e(r['verdict'])}</td>"
        f"<td>{(r['p_value'] if r['p_value'] is not None else float('nan')):.3g}</td><td>{e(r['reason'])}</td></tr>"
        for r in results["pairs"])
    model_rows = "".join(
        f"<tr><td>{e(m['name'])}</td><td><code>{e(m['spec'])}</code></td><td><code>{e(m['fingerprint'][:16])}</code></td>"
        f"<td>{m['n_params'] if m['n_params'] else 'n/a'}</td></tr>" for m in results["models"])
    controls = ", ".join(f"<code>{e(c['spec'])}</code>" for c in results["controls"])
    figs = "".join(f"<figure>{_img(png, alt)}<figcaption>{e(alt)}</figcaption></figure>" for alt, png in figures)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Provenance lineage matrix</title>
<style>
 body {{ font-family: Georgia, serif; max-width: 64rem; margin: 2rem auto; padding: 0 1rem; color: #1d1d1d; }}
 h1, h2 {{ font-family: Helvetica, Arial, sans-serif; }} h2 {{ border-bottom: 2px solid #4a6fa5; }}
 table {{ border-collapse: collapse; width: 100%; font-size: .85rem; }} th, td {{ border: 1px solid #ccd; padding: .3rem; text-align: left; }}
 th {{ background: #eef1f6; }} code {{ font-size: .8rem; word-break: break-all; }} figure {{ display: inline-block; }} img {{ max-width: 100%; }}
</style></head><body>
<h1>Lineage matrix: {len(results['models'])} models, {len(results['pairs'])} pairs</h1>
<p>{e(results['method'])} Controls: {controls}. An edge is evidence of lineage at the stated error control, not proof;
a missing edge means no evidence at the tested power.</p>
<h2>Figures</h2>{figs}
<h2>Edges</h2><table><tr><th>a</th><th>b</th><th>verdict</th><th>adjusted p</th><th>direction</th><th>kind</th></tr>{edge_rows}</table>
<h2>Models</h2><table><tr><th>name</th><th>spec</th><th>fingerprint</th><th>parameters</th></tr>{model_rows}</table>
<h2>Every pair</h2><table><tr><th>a</th><th>b</th><th>verdict</th><th>adjusted p</th><th>reason</th></tr>{pair_rows}</table>
<p>Budget {results['budget']} probes per model, seed {results['seed']}, {results['wall_seconds']} s;
provenance {e(str(results['environment']['tool']['version']))}.</p>
</body></html>
"""


def write_matrix(out: Path, results: dict[str, Any], transcripts: Sequence[dict[str, Any]]) -> str:
    """Built in a temporary directory and swapped in (like an evidence bundle), with SHA256SUMS."""
    from provenance.report.bundle import _swap_in, write_sums

    tmp = out.with_name(f".{out.name}.partial-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        atomic_write_json(tmp / "results.json", results)
        atomic_write_bytes(tmp / "transcripts.jsonl",
                           "".join(json.dumps(r, sort_keys=True, ensure_ascii=False) + "\n" for r in transcripts).encode())
        atomic_write_text(tmp / "matrix.csv", pairs_csv(results))
        figs = [("clustered heatmap of pairwise evidence", heatmap(results)), ("lineage graph", lineage_graph(results))]
        atomic_write_bytes(tmp / "heatmap.png", figs[0][1])
        atomic_write_bytes(tmp / "lineage.png", figs[1][1])
        atomic_write_text(tmp / "matrix.html", page(results, figs))
        digest = write_sums(tmp)
        _swap_in(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return digest


__all__ = ["write_matrix", "heatmap", "lineage_graph", "pairs_csv", "page"]
