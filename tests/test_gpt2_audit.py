"""A GPT-2-architecture checkpoint (no `.model` attribute) goes through an audit with the likelihood family."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import requires_models, tiny_llama

pytestmark = [requires_models, pytest.mark.slow]


def test_gpt2_suspect_is_scored_by_the_likelihood_family(tmp_path: Path, isolated_cache: Path) -> None:
    from transformers import GPT2Config

    from provenance.audit import AuditConfig, run_audit
    from provenance.zoo.build import _tokenizer
    from provenance.zoo.train import fresh_model, save

    tok = _tokenizer()
    gpt2 = GPT2Config(vocab_size=len(tok), n_positions=256, n_embd=32, n_layer=1, n_head=2,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    suspect = save(fresh_model(gpt2, 1), tok, tmp_path / "gpt2-suspect", "tiny GPT-2", lineage="g")
    models = {name: tiny_llama(tmp_path / name, seed, name, name)
              for seed, name in enumerate(["ref", "c1", "c2", "c3"], start=2)}
    res = run_audit(AuditConfig(suspect=str(suspect), references=[str(models["ref"])],
                                controls=[str(models[c]) for c in ("c1", "c2", "c3")], budget=40, progress=False,
                                identity_set=None))
    ll = next(t for t in res["references"][0]["tests"] if t["name"] == "reference_likelihood")
    assert ll["skipped"] is None and ll["p_value"] is not None and 0 < ll["p_value"] <= 1
    assert "logits" in res["access"][str(suspect)]
