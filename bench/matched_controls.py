"""Audits with no -c on suspects unlike the zoo's: do matched controls find a student and spare independent models?

Protocol, fixed before any of these audits was run (committed with this script, 2026-11-30; issue #15's first
done-when item):

- Suspects, all new to development (a shape and training budget no zoo student of SmolLM2 has: 128 hidden x 4
  layers, 10 epochs; the zoo's students of SmolLM2 are 64x2, 128x2 or 64x4 at 5 epochs), SmolLM2's tokenizer, the
  study zoo's closed vocabulary of 4,096 ids, seed 11:
  1. `smol-student`: sequence-level student of SmolLM2-135M-Instruct: the zoo's 320 sampled answers plus 640 new ones
     (continuation prompts 1320-1959, seed 11, 48 new tokens, temperature 1). Related to the reference.
  2. `qwen-student`: sequence-level student of Qwen2.5-Coder-0.5B-Instruct (the zoo's 320 sampled answers, 30 epochs
     so that it trains on about as many tokens). Independent of the reference.
  3. `text-root`: no teacher: 24 slices of the study zoo's public-prose corpus (jargon and Debian Reference first).
     Independent of the reference.
- Each is audited against `smollm2-135m-instruct` with no `-c` and no panel (so `--build-controls auto` trains its
  matched controls), budget 200, seed 0, every other option at its default.
- Outcome: flagged = verdict `distilled` or `derived`. Expected: 1 flagged, 2 and 3 not. Whatever comes out is
  reported as it is, with each family's p, the placebo and the competence check; three cases are a demonstration, not
  a rate (the validation study gives rates).

Usage: python bench/matched_controls.py [--out DIR]  (about an hour on 2 cores; resumable: finished steps are kept)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import _common  # noqa: F401 - sets up the import path
from _common import RESULTS, machine, subprocess_env, write_results

SEED = 11
SHAPE = (128, 4)
EPOCHS = {"smol-student": 10, "qwen-student": 30, "text-root": 3}
REFERENCE = "smollm2-135m-instruct"


def lineages_dir() -> Path:
    from provenance.zoo.lineages import default_lineages_dir

    d = default_lineages_dir()
    if not (d / "corpus" / "manifest.json").is_file():
        raise SystemExit(f"{d}: the study zoo's corpus is needed (provenance zoo lineages)")
    return d


def smol_samples(out: Path, zoo: Path) -> list[list[int]]:
    path = out / "smol-extra-samples.json"
    if not path.is_file():
        from provenance.models import resolve
        from provenance.probeset import load as load_probes
        from provenance.zoo.train import sample

        prompts = [p.text for p in load_probes("continuation").probes[1320:1960]]
        backend = resolve(REFERENCE).load()
        seqs = sample(backend.model, backend.tokenizer, prompts, 48, 1.0, seed=SEED)
        backend.close()
        path.write_text(json.dumps(seqs))
    zoo_seqs = json.loads((zoo / "families" / "p-smollm2" / "samples.json").read_text())
    return zoo_seqs + json.loads(path.read_text())


def train_suspect(name: str, out: Path, zoo: Path) -> Path:
    from provenance.zoo.build import _tokenizer
    from provenance.zoo.train import fresh_model, is_complete, save, tiny_config, train_closed

    d = out / name
    if is_complete(d):
        return d
    tok = _tokenizer()
    manifest = json.loads((zoo / "corpus" / "manifest.json").read_text())
    keep = manifest["keep"]
    if name == "smol-student":
        seqs = smol_samples(out, zoo)
    elif name == "qwen-student":
        seqs = json.loads((zoo / "families" / "p-qwen25" / "samples.json").read_text())
    else:
        tokens = json.loads((zoo / "corpus" / "tokens.json").read_text())
        ids = sorted(tokens, key=lambda s: (not s.startswith(("jargon", "debref")), s))[:24]
        seqs = [tokens[s][i : i + 128] for s in ids for i in range(0, len(tokens[s]) - 127, 128)]
    pad = tok.eos_token_id
    net = fresh_model(tiny_config(len(tok), *SHAPE, bos=tok.bos_token_id, eos=tok.eos_token_id, pad=pad), SEED)
    t0 = time.time()
    train_closed(net, seqs, EPOCHS[name], 3e-3, seed=SEED, pad=pad, keep=keep, batch=8)
    # No .lineage file: the suspect's lineage is unknown to the audit, as a real suspect's is.
    save(net, tok, d, f"{name}: {SHAPE}, {EPOCHS[name]} epochs on {len(seqs)} sequences ({time.time() - t0:.0f} s)")
    return d


def audit(name: str, suspect: Path, out: Path) -> dict[str, Any]:
    bundle = out / f"audit-{name}"
    if not (bundle / "results.json").is_file():
        t0 = time.time()
        proc = subprocess.run([sys.executable, "-m", "provenance", "audit", "-s", str(suspect), "-r", REFERENCE,
                               "-o", str(bundle), "--no-progress", "--replace"],
                              env=subprocess_env(), capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"audit of {name} failed: {proc.stderr[-2000:]}")
        (out / f"audit-{name}.seconds").write_text(f"{time.time() - t0:.0f}\n")
    res = json.loads((bundle / "results.json").read_text())
    ref = res["references"][0]
    comp = ref.get("competence_check") or {}
    return {"suspect": name, "verdict": ref["verdict"], "p_value": ref["p_value"], "reason": ref["reason"],
            "tests": {t["name"]: t["p_value"] for t in ref["tests"]},
            "controls": {u: ms for u, ms in ref["controls_used"].items()},
            "controls_panel": res.get("controls_panel"),
            "placebo": [(r["lineage"], r["p_value"]) for r in ref["placebo"]["rows"]],
            "competence": comp.get("competence"), "controls_range": comp.get("controls_range"),
            "warnings": res["warnings"],
            "seconds": float((out / f"audit-{name}.seconds").read_text()) if (out / f"audit-{name}.seconds").is_file() else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path.home() / ".cache" / "provenance" / "bench-matched")
    ap.add_argument("--suspects-only", action="store_true", help="Train the three suspects and stop (no audit).")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    zoo = lineages_dir()
    info = machine()
    rows = []
    suspects = {name: train_suspect(name, args.out, zoo) for name in ("smol-student", "qwen-student", "text-root")}
    if args.suspects_only:
        return
    for name, suspect in suspects.items():
        rows.append(audit(name, suspect, args.out))
        print(json.dumps({k: rows[-1][k] for k in ("suspect", "verdict", "p_value")}), flush=True)
    flagged = {r["suspect"]: r["verdict"] in ("distilled", "derived") for r in rows}
    write_results("matched-controls", {"machine": info, "reference": REFERENCE, "shape": SHAPE,
                                            "epochs": EPOCHS, "rows": rows, "flagged": flagged,
                                            "expected": {"smol-student": True, "qwen-student": False,
                                                         "text-root": False}})


if __name__ == "__main__":
    main()
