"""Batched sampling in the transformers backend: each answer depends on its own seed alone, and draws are exact."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

from tests.conftest import requires_models

pytestmark = [requires_models, pytest.mark.slow]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from provenance.models import resolve
    from provenance.zoo.build import _tokenizer
    from provenance.zoo.train import fresh_model, save, tiny_config

    tok = _tokenizer()
    model = fresh_model(tiny_config(len(tok), 32, 1, init_range=0.5, bos=tok.bos_token_id, eos=tok.eos_token_id,
                                    pad=tok.eos_token_id), seed=3)
    d = save(model, tok, tmp_path_factory.mktemp("tiny") / "m", "tiny random model for sampling tests")
    backend = resolve(str(d)).load()
    yield backend
    backend.close()


def test_a_sampled_answer_does_not_depend_on_its_batch(tiny: Any) -> None:
    from provenance.models import Request

    a = Request("The weather today is", max_new_tokens=16, temperature=0.7, seed=11)
    b = Request("A much longer prompt, so that the first one is padded on the left in a batch:", max_new_tokens=16,
                temperature=0.7, seed=12)
    alone = tiny.generate([a])[0]
    together = tiny.generate([b, a, Request("x", max_new_tokens=16, temperature=0.7, seed=13)])
    assert together[1].text == alone.text and together[1].logprob == pytest.approx(alone.logprob, abs=1e-4)
    assert tiny.generate([Request(a.prompt, max_new_tokens=16, temperature=0.7, seed=99)])[0].text != alone.text


def test_batched_draws_follow_the_tempered_softmax(tiny: Any) -> None:
    """First tokens of 600 seeded draws against softmax(logits / T): each of the top tokens within 4.5 sigma."""
    import torch

    from provenance.models import Request

    prompt, temperature = "Once upon a time", 0.08
    draws = tiny.generate([Request(prompt, max_new_tokens=1, temperature=temperature, seed=s) for s in range(600)])
    enc = tiny.tokenizer(prompt, return_tensors="pt")
    with torch.inference_mode():
        logits = tiny.model(**enc).logits[0, -1].float()
    p = torch.softmax(logits / temperature, dim=-1).numpy()
    top = np.argsort(-p)[:3]
    assert p[top].sum() > 0.5  # a peaked distribution: the check has power
    ids = [tiny.tokenizer(d.text, add_special_tokens=False)["input_ids"][:1] for d in draws]
    for t in top:
        k = sum(1 for x in ids if x == [int(t)])
        sd = np.sqrt(600 * p[t] * (1 - p[t]))
        assert abs(k - 600 * p[t]) <= 4.5 * sd + 2, (int(t), k, 600 * p[t])
