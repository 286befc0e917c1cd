"""Converted GGUFs stored as bfloat16 instead of float32: how far do scores and greedy answers move?

python bench/bf16_storage.py [PACKAGED_NAME]  (default smollm2-135m-instruct). The float32 copy (what the engine
stores today) and a bfloat16 copy of it, both run in float32 on the CPU: per-text log-likelihood of 64 sampled answers
(the likelihood test's quantity), first-token top-20 of 64 next-token probes, and 32 greedy continuations.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from _common import machine, table, write_results


def main() -> None:
    import torch
    from transformers import AutoModelForCausalLM

    from provenance.models import Request, resolve
    from provenance.models.base import ScoreRequest as SR
    from provenance.models.hf import HFBackend, converted_gguf_dir
    from provenance.probeset import load

    spec = sys.argv[1] if len(sys.argv) > 1 else "smollm2-135m-instruct"
    rm = resolve(spec)
    f32_dir = converted_gguf_dir(rm.gguf, rm.fingerprint)
    tmp = Path(tempfile.mkdtemp())
    bf_dir = tmp / "bf16"
    model = AutoModelForCausalLM.from_pretrained(str(f32_dir), dtype=torch.float32)
    model.to(torch.bfloat16).save_pretrained(str(bf_dir), safe_serialization=True)
    for f in f32_dir.iterdir():  # everything but the weights and config (the chat template included)
        if f.is_file() and not f.name.endswith(".safetensors") and not (bf_dir / f.name).exists():
            shutil.copy(f, bf_dir / f.name)
    del model
    size = {k: sum(f.stat().st_size for f in d.glob("*.safetensors")) / 2**20 for k, d in
            (("float32", f32_dir), ("bfloat16", bf_dir))}
    instr, cont, nxt = load("instructions"), load("continuation"), load("next-token")
    backends = {"float32": HFBackend(spec, f32_dir, device="cpu", dtype="float32"),
                "bfloat16": HFBackend(spec, bf_dir, device="cpu", dtype="float32")}
    answers = backends["float32"].generate([Request(p.text, max_new_tokens=40, temperature=0.7, seed=i, chat=instr.chat)
                                            for i, p in enumerate(instr.probes[:64])])
    scored = {k: b.score([SR(p.text, a.text, instr.chat) for p, a in zip(instr.probes[:64], answers)])
              for k, b in backends.items()}
    greedy = {k: [c.text for c in b.generate([Request(p.text, max_new_tokens=16) for p in cont.probes[:32]])]
              for k, b in backends.items()}
    top = {k: b.generate([Request(p.text, max_new_tokens=0, top_k=20) for p in nxt.probes[:64]])
           for k, b in backends.items()}
    d_ll = [abs(a.logprob - b.logprob) for a, b in zip(scored["float32"], scored["bfloat16"])]
    d_nb = [abs(a.logprob - b.logprob) / max(1, a.n_bytes) for a, b in zip(scored["float32"], scored["bfloat16"])]
    same_greedy = sum(a == b for a, b in zip(greedy["float32"], greedy["bfloat16"]))
    same_top1 = sum(a.top[0].token_id == b.top[0].token_id for a, b in zip(top["float32"], top["bfloat16"]))
    d_top = [abs(a.top[0].logprob - b.top[0].logprob) for a, b in zip(top["float32"], top["bfloat16"])]
    rows = [["weights on disk, MiB", f"{size['float32']:.0f}", f"{size['bfloat16']:.0f}"],
            ["|delta log-likelihood| per answer, nats (median / max)", "-",
             f"{statistics.median(d_ll):.4f} / {max(d_ll):.4f}"],
            ["|delta| per byte, nats (median / max)", "-", f"{statistics.median(d_nb):.5f} / {max(d_nb):.5f}"],
            ["greedy continuations identical", "-", f"{same_greedy} of {len(greedy['float32'])}"],
            ["next-token top-1 identical", "-", f"{same_top1} of {len(d_top)}"],
            ["|delta top-1 logprob|, nats (median / max)", "-", f"{statistics.median(d_top):.4f} / {max(d_top):.4f}"]]
    print(table(["", "float32 copy", "bfloat16 copy"], rows))
    write_results("bf16_storage", {"spec": spec, "mib": size, "abs_delta_loglik": d_ll, "abs_delta_per_byte": d_nb,
                                   "greedy_identical": same_greedy, "top1_identical": same_top1,
                                   "abs_delta_top1": d_top, "machine": machine()})
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
