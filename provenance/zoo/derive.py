"""Derivatives of a model: copies that share its weights (noised here), saved as safetensors directories."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from provenance.models import resolve


def noised_copy(source: str, out: Path, relative_noise: float = 0.02, seed: int = 0) -> Path:
    """Add Gaussian noise of `relative_noise` x each tensor's std to every weight; deterministic from `seed`.

    This is the simplest derivative (shares weights, behaves slightly differently): ground truth for `derived`.
    """
    out = Path(out)
    if (out / "config.json").is_file() and (out / ".complete").is_file():
        return out
    import torch
    from transformers import AutoModelForCausalLM

    model = resolve(source)
    backend = model.load()  # converts a GGUF to a plain safetensors directory on first use
    assert model.local_path is not None
    src_dir = model.local_path
    backend.close()
    net = AutoModelForCausalLM.from_pretrained(str(src_dir), dtype=torch.float32, local_files_only=True)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, p in sorted(net.named_parameters(), key=lambda kv: kv[0]):
            if p.numel() > 1:
                p.add_(torch.randn(p.shape, generator=gen) * float(p.std()) * relative_noise)
    tmp = out.with_name(out.name + f".{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    net.save_pretrained(str(tmp), safe_serialization=True)
    for f in src_dir.iterdir():  # tokenizer and generation files, unchanged
        if f.is_file() and f.suffix != ".safetensors" and f.name not in ("config.json", ".complete") and not (tmp / f.name).exists():
            shutil.copy2(f, tmp / f.name)
    (tmp / ".complete").write_text(f"noised copy of {source} (relative noise {relative_noise}, seed {seed})\n")
    shutil.rmtree(out, ignore_errors=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, out)
    return out
