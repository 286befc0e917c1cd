"""The weights test's matrices read straight from safetensors or GGUF files, without loading the model."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from provenance.models import ResolvedModel

log = logging.getLogger(__name__)

MAX_UNITS = 512  # as HFBackend.weight_sketch: the first 512 hidden units of each matrix
_UP = re.compile(r"^model\.layers\.(\d+)\.mlp\.up_proj\.weight$")
_GGUF_UP = re.compile(r"^blk\.(\d+)\.ffn_up\.weight$")
# GGUF architectures whose ffn_up tensor transformers' GGUF loader passes through unchanged (its TensorProcessor only
# permutes attention or shifts norms), so the dequantised matrix is the one a loaded model holds.
GGUF_PLAIN_FFN_UP = frozenset({"llama", "mistral", "qwen2", "qwen3", "gemma2", "gemma3", "phi3", "stablelm"})


def _chosen(layers: dict[int, str]) -> list[str]:
    """First, middle and last layer, chosen exactly as HFBackend.weight_sketch chooses among loaded parameters."""
    names = [layers[i] for i in sorted(layers)]
    return sorted({names[0], names[len(names) // 2], names[-1]}) if names else []


def _f16(a: np.ndarray) -> np.ndarray:
    # Through float32, as the CPU backend holds weights (float32) before casting its sketch to float16: bf16, f16 and
    # f32 files all give the bytes a loaded model gives.
    return np.ascontiguousarray(a[:MAX_UNITS].astype(np.float32).astype(np.float16))


def sketch_from_directory(path: Path) -> dict[str, Any] | None:
    """The sketch from a transformers directory's safetensors, or None when its tensor names are not the standard
    `model.layers.N.mlp.up_proj.weight` of a causal LM (then the model is loaded, as before)."""
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    archs = config.get("architectures") or []
    if not isinstance(config, dict) or not archs or not str(archs[0]).endswith("ForCausalLM"):
        return None
    files = sorted(path.glob("*.safetensors"))
    if not files:
        return None
    from safetensors import safe_open

    where: dict[str, Path] = {}
    layers: dict[int, str] = {}
    for f in files:
        with safe_open(str(f), framework="pt") as st:
            for name in st.keys():
                m = _UP.match(name)
                if m:
                    layers[int(m.group(1))] = name
                    where[name] = f
    chosen = _chosen(layers)
    if not chosen:
        return None
    tensors = {}
    for name in chosen:
        with safe_open(str(where[name]), framework="pt") as st:
            # get_slice reads only the first MAX_UNITS rows from the file (bf16 has no numpy type, hence torch).
            t = st.get_slice(name)[:MAX_UNITS]
        import torch

        tensors[name] = t.to(torch.float32).to(torch.float16).numpy()
    return {"model_type": config.get("model_type"), "tensors": tensors}


def sketch_from_gguf(gguf: Path) -> dict[str, Any] | None:
    """The sketch from a GGUF file's ffn_up tensors, de-quantised as transformers' GGUF loader does."""
    from gguf import GGUFReader
    from gguf.quants import dequantize

    from provenance.models.validate import validate_gguf

    validate_gguf(gguf)  # a malformed header must not reach the GGUF reader, which trusts its counts
    reader = GGUFReader(str(gguf))
    field = reader.fields.get("general.architecture")
    arch = bytes(field.parts[field.data[0]]).decode("utf-8", "replace") if field is not None else ""
    if arch not in GGUF_PLAIN_FFN_UP:
        return None
    by_name = {t.name: t for t in reader.tensors}
    layers = {int(m.group(1)): name for name in by_name if (m := _GGUF_UP.match(name))}
    chosen = _chosen(layers)
    if not chosen:
        return None
    from transformers import AutoConfig  # reads GGUF metadata only: the model_type a loaded model reports

    model_type = AutoConfig.from_pretrained(str(gguf.parent), gguf_file=gguf.name).model_type
    tensors = {}
    for name in chosen:
        t = by_name[name]
        rows = dequantize(t.data, t.tensor_type)
        hf_name = f"model.layers.{_GGUF_UP.match(name).group(1)}.mlp.up_proj.weight"  # type: ignore[union-attr]
        tensors[hf_name] = _f16(np.asarray(rows).reshape(-1, rows.shape[-1]))
    return {"model_type": model_type, "tensors": tensors}


def sketch_from_files(model: "ResolvedModel") -> dict[str, Any] | None:
    """The weights test's matrices without loading `model`, or None (remote, pickle-only or unusual names)."""
    from provenance.models.hf import converted_if_ready

    try:
        if model.local_path is not None:
            return sketch_from_directory(Path(model.local_path))
        if model.gguf is not None:
            ready = converted_if_ready(model.fingerprint)
            return sketch_from_directory(ready) if ready is not None else sketch_from_gguf(Path(model.gguf))
    except Exception as exc:  # noqa: BLE001 - any failure here only means "load the model instead", as before
        log.info("weight sketch from files failed for %s (%s); loading the model", model.label, type(exc).__name__)
    return None
