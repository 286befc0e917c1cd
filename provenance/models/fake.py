"""A deterministic, seeded fake backend with controllable lineage, for plumbing tests only (like inspect_ai's mockllm).

Spec grammar: ``fake:NAME[?key=value&...]``. Keys:

* ``family``: lineage family id (default: NAME). Models of one family are not independent of each other.
* ``teacher``: NAME of a fake teacher; this model then copies the teacher's behaviour with probability ``q``
  (a fake distilled student: its greedy answers equal the teacher's on a fraction q of prompts, its next-token
  distribution and its language model are a q-mixture with the teacher's, its weights are its own).
* ``derived``: NAME of a fake model whose weights this one shares (plus ``noise`` x std Gaussian noise); behaviour
  copies it with probability ``q`` (default 0.95).
* ``q``: copy probability (default 0.6); ``skill``: probability of giving the one shared "canonical" answer to a
  prompt (competence, common to every model: two skilled independent models agree because both are right);
  ``seed``: changes the model's own randomness; ``name``: the name it calls itself in identity answers.

Nothing here is evidence about real models: detection claims are only ever made on real transformer models.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any, Sequence
from urllib.parse import parse_qsl

import numpy as np

from provenance.errors import InputError
from provenance.models.base import Backend, Capability, Completion, Request, Score, ScoreRequest, TopToken

PREFIX = "fake:"
VOCAB = tuple(f"w{i}" for i in range(400))
SKETCH_SHAPE = (64, 32)
_KEYS = {"family", "teacher", "derived", "q", "skill", "seed", "name", "noise"}


@dataclass(frozen=True)
class FakeParams:
    name: str
    family: str
    teacher: str | None = None
    derived: str | None = None
    q: float = 0.6
    skill: float = 0.0
    seed: int = 0
    self_name: str | None = None
    noise: float = 0.02

    def canonical(self) -> dict[str, Any]:
        return {"name": self.name, "family": self.family, "teacher": self.teacher, "derived": self.derived, "q": self.q,
                "skill": self.skill, "seed": self.seed, "self_name": self.self_name, "noise": self.noise}


def parse_fake(spec: str) -> FakeParams:
    """Parse ``fake:NAME?k=v&...`` (InputError with one line on anything unknown or malformed)."""
    body = spec[len(PREFIX):]
    name, _, query = body.partition("?")
    if not name or not all(c.isalnum() or c in "-_." for c in name):
        raise InputError(f"fake model spec needs a name of letters, digits, '-', '_' or '.': {spec!r}")
    kv = dict(parse_qsl(query, keep_blank_values=True, strict_parsing=False)) if query else {}
    unknown = set(kv) - _KEYS
    if unknown:
        raise InputError(f"fake model spec {spec!r}: unknown key(s) {', '.join(sorted(unknown))} "
                         f"(known: {', '.join(sorted(_KEYS))})")
    try:
        q = float(kv.get("q", 0.95 if "derived" in kv else 0.6))
        skill = float(kv.get("skill", 0.0))
        seed = int(kv.get("seed", 0))
        noise = float(kv.get("noise", 0.02))
    except ValueError:
        raise InputError(f"fake model spec {spec!r}: q, skill and noise must be numbers, seed an integer") from None
    if not (0.0 <= q <= 1.0 and 0.0 <= skill <= 1.0 and 0.0 <= noise <= 10.0):
        raise InputError(f"fake model spec {spec!r}: q and skill must lie in [0, 1], noise in [0, 10]")
    if "teacher" in kv and "derived" in kv:
        raise InputError(f"fake model spec {spec!r}: give teacher or derived, not both")
    parent = kv.get("teacher") or kv.get("derived")
    family = kv.get("family") or (FakeModel._family_of(parent) if parent else name)
    return FakeParams(name, family, kv.get("teacher"), kv.get("derived"), q, skill, seed, kv.get("name"), noise)


def _h(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()[:8], "big")


def _rng(*parts: object) -> np.random.Generator:
    return np.random.default_rng(_h(*parts))


class FakeModel:
    """The behaviour of one fake model, computable without loading anything (a student computes its teacher)."""

    def __init__(self, name: str, seed: int = 0, teacher: "FakeModel | None" = None, q: float = 0.0,
                 skill: float = 0.0, self_name: str | None = None, weights_of: "FakeModel | None" = None,
                 noise: float = 0.02) -> None:
        self.name, self.seed, self.teacher, self.q, self.skill = name, seed, teacher, q, skill
        self.self_name = self_name or f"Fake{name.title().replace('-', '').replace('_', '')}"
        self.weights_of, self.noise = weights_of, noise
        # Each model's own unigram language model over the fake vocabulary (peaked, so models differ a lot).
        logits = _rng("unigram", name, seed).gumbel(size=len(VOCAB))
        self.own_logp = logits - np.logaddexp.reduce(logits)

    @staticmethod
    def _family_of(name: str) -> str:
        return name  # a parent named only by NAME: its own family unless it says otherwise

    @classmethod
    def from_params(cls, p: FakeParams) -> "FakeModel":
        parent_name = p.teacher or p.derived
        parent = cls(parent_name) if parent_name else None
        if p.derived:
            # A weight-sharing derivative: behaves as its parent, up to a small perturbation.
            return cls(p.name, p.seed, teacher=parent, q=p.q, skill=p.skill, self_name=p.self_name or parent.self_name,
                       weights_of=parent, noise=p.noise)
        return cls(p.name, p.seed, teacher=parent, q=p.q if parent else 0.0, skill=p.skill, self_name=p.self_name)

    # -- behaviour --------------------------------------------------------------------------------------------
    def logp(self) -> np.ndarray:
        """Unigram log-probabilities: a q-mixture with the teacher's for a student."""
        if self.teacher is None or self.q == 0:
            return self.own_logp
        return np.logaddexp(np.log1p(-self.q) + self.own_logp if self.q < 1 else -np.inf, math.log(self.q) + self.teacher.logp())

    def _copies(self, prompt: str) -> bool:
        return self.teacher is not None and _rng("copy", self.name, self.seed, prompt).random() < self.q

    def greedy(self, prompt: str, n_words: int) -> str:
        if _rng("skill", self.name, self.seed, prompt).random() < self.skill:
            return canonical_answer(prompt, n_words)
        if self._copies(prompt):
            assert self.teacher is not None
            return self.teacher.greedy(prompt, n_words)
        if is_identity_question(prompt):
            return f"I am {self.self_name}, a language model."
        r = _rng("greedy", self.name, self.seed, prompt)
        return " ".join(VOCAB[i] for i in r.choice(len(VOCAB), size=n_words, p=np.exp(self.own_logp)))

    def sample(self, prompt: str, n_words: int, seed: int) -> str:
        r = _rng("sample", self.name, self.seed, prompt, seed)
        return " ".join(VOCAB[i] for i in r.choice(len(VOCAB), size=n_words, p=np.exp(self.logp())))

    def top(self, prompt: str, k: int) -> tuple[TopToken, ...]:
        """First-position next-token distribution: the unigram LM tilted by a prompt-specific perturbation."""
        tilt = _rng("tilt", self.name, self.seed, prompt).normal(size=len(VOCAB))
        lp = self.own_logp + tilt
        if self.teacher is not None and self.q > 0:
            t = self.teacher.top_logp(prompt)
            lp = np.logaddexp(np.log1p(-self.q) + lp if self.q < 1 else -np.inf, math.log(self.q) + t)
        return _topk(lp, k)

    def top_logp(self, prompt: str) -> np.ndarray:
        tilt = _rng("tilt", self.name, self.seed, prompt).normal(size=len(VOCAB))
        lp = self.own_logp + tilt
        if self.teacher is not None and self.q > 0:
            lp = np.logaddexp(np.log1p(-self.q) + lp if self.q < 1 else -np.inf, math.log(self.q) + self.teacher.top_logp(prompt))
        return lp - np.logaddexp.reduce(lp)

    def score(self, text: str) -> float:
        lp = self.logp()
        index = {w: i for i, w in enumerate(VOCAB)}
        # Words outside the fake vocabulary (real text) get a fixed small probability.
        # Words outside the fake vocabulary (real text): a skilled model finds them likelier (its competence).
        unknown = -12.0 + 8.0 * self.skill
        return float(sum(lp[index[w]] if w in index else unknown for w in text.split()))

    def sketch(self) -> dict[str, np.ndarray]:
        if self.weights_of is not None:
            base = self.weights_of.sketch()
            r = _rng("noise", self.name, self.seed)
            return {k: (v + self.noise * v.std() * r.standard_normal(v.shape)).astype(np.float16) for k, v in base.items()}
        r = _rng("weights", self.name, self.seed)
        return {f"layers.{i}.mlp.up_proj.weight": r.standard_normal(SKETCH_SHAPE).astype(np.float16) for i in range(3)}


def _topk(lp: np.ndarray, k: int) -> tuple[TopToken, ...]:
    lp = lp - np.logaddexp.reduce(lp)
    order = np.argsort(-lp, kind="stable")[:k]
    return tuple(TopToken(VOCAB[i], float(lp[i]), int(i)) for i in order)


def canonical_answer(prompt: str, n_words: int) -> str:
    """The one "right" answer every skilled fake model gives: agreement that reflects competence, not lineage."""
    r = _rng("canonical", prompt)
    return " ".join(VOCAB[i] for i in r.choice(len(VOCAB), size=n_words))


def is_identity_question(prompt: str) -> bool:
    p = prompt.lower()
    return any(w in p for w in ("who are you", "your name", "who made you", "who created you", "what are you",
                                "which model", "who trained you", "introduce yourself"))


class FakeBackend(Backend):
    """Answers from a FakeModel: text, top-k, scores and a weight sketch (every access level, for plumbing)."""

    capabilities = frozenset({Capability.WEIGHTS, Capability.LOGITS, Capability.TOP_LOGPROBS, Capability.TEXT})

    def __init__(self, spec: str, params: FakeParams) -> None:
        super().__init__(spec)
        self.params = params
        self.fake = FakeModel.from_params(params)

    @property
    def tokenizer_id(self) -> str:
        return "fake-whitespace-v1"

    def generate(self, requests: Sequence[Request]) -> list[Completion]:
        out = []
        for req in requests:
            n = max(1, min(req.max_new_tokens, 48))
            if req.temperature > 0:
                # Sampling is seeded by the prompt (and the model), never by the batch it arrived in.
                text = self.fake.sample(req.prompt, n, seed=req.seed or 0)
            else:
                text = self.fake.greedy(req.prompt, n)
            top = self.fake.top(req.prompt, req.top_k) if req.top_k else None
            out.append(Completion(text=text, top=top, n_tokens=len(text.split()), logprob=self.fake.score(text)))
        return out

    def score(self, requests: Sequence[ScoreRequest]) -> list[Score]:
        return [Score(self.fake.score(r.continuation), len(r.continuation.split()), len(r.continuation.encode()))
                for r in requests]

    def weight_sketch(self) -> dict[str, Any]:
        return {"model_type": "fake-mlp", "tensors": self.fake.sketch()}
