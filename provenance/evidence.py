"""Evidence records: what a model answered, how it scored texts, and who it is; no loader, no live model."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Mapping, Sequence

import numpy as np

from provenance.probeset import Probe, ProbeSet

# The pseudo probe-set id under which likelihood scores are written to transcripts.
LIKELIHOOD_SET = "likelihood"
UNKNOWN_LINEAGE = "unknown"


@dataclass(frozen=True)
class TopToken:
    """One entry of a next-token distribution: the decoded token, its id where known, its logprob."""

    token: str
    logprob: float
    token_id: int | None = None


@dataclass(frozen=True)
class Completion:
    """A backend's answer to one request."""

    text: str
    top: tuple[TopToken, ...] | None = None  # first-position top-k, None when the backend cannot give it
    n_tokens: int = 0
    raw: dict[str, Any] = field(default_factory=dict)  # backend-specific details kept for the transcript
    logprob: float | None = None  # log-likelihood of the generated tokens under the model, from the same pass

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"text": self.text, "n_tokens": self.n_tokens}
        if self.logprob is not None:
            out["logprob"] = self.logprob
        if self.top is not None:
            out["top"] = [[t.token, t.logprob, t.token_id] for t in self.top]
        if self.raw:
            out["raw"] = self.raw
        return out

    @staticmethod
    def from_json(obj: dict[str, Any]) -> "Completion":
        top = obj.get("top")
        return Completion(
            text=obj["text"],
            top=None if top is None else tuple(TopToken(t[0], float(t[1]), t[2]) for t in top),
            n_tokens=int(obj.get("n_tokens", 0)),
            raw=obj.get("raw", {}),
            logprob=obj.get("logprob"),
        )


@dataclass(frozen=True)
class Score:
    """Log-likelihood of one continuation under one model."""

    logprob: float  # sum over the continuation's tokens
    n_tokens: int
    n_bytes: int  # UTF-8 bytes of the continuation: per-byte values compare across tokenizers
    # How a remote backend obtained it (request, HTTP exchange) for the transcript; never part of the value or its JSON.
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {"logprob": self.logprob, "n_tokens": self.n_tokens, "n_bytes": self.n_bytes}

    @property
    def per_byte(self) -> float:
        return self.logprob / max(self.n_bytes, 1)


@dataclass(frozen=True)
class ModelIdentity:
    """Who a model is, fixed before it is queried: what the statistics and the bundle need, never a loader."""

    label: str  # the spec as the user gave it
    fingerprint: str
    kind: str  # the backend kind that reached it ("directory", "gguf", "http", "packaged", "hub", "fake")
    source: Mapping[str, Any] = field(default_factory=dict)
    files: Mapping[str, str] = field(default_factory=dict)
    lineage: str = UNKNOWN_LINEAGE  # the lineage family (models of one family are not independent of each other)

    def to_json(self) -> dict[str, Any]:
        return {"spec": self.label, "kind": self.kind, "fingerprint": self.fingerprint, "source": dict(self.source),
                "files": dict(self.files), "lineage": self.lineage}


@dataclass
class ModelEvidence:
    """Everything the statistics need from one model, independent of the live model."""

    model: ModelIdentity
    capabilities: frozenset[str]
    tokenizer_id: str | None
    answers: dict[str, dict[str, Completion]] = field(default_factory=dict)  # probe set id -> probe id -> answer
    records: list[dict[str, Any]] = field(default_factory=list)  # transcript lines
    weights: dict[str, np.ndarray] | None = None
    model_type: str | None = None
    loaded: bool = False
    notes: list[str] = field(default_factory=list)
    endpoint: dict[str, Any] | None = None  # what an HTTP server reported about itself while answering
    scores: dict[str, Score] = field(default_factory=dict)  # score item id -> this model's score of it


# What a suspect lets an auditor see, from most to least: weights, log-likelihoods of any text, top-k logprobs of its
# answers, text alone. The validation study evaluates one collection at each level (restrict).
ACCESS_LEVELS = ("weights", "logits", "top_k", "text")


def restrict(ev: ModelEvidence, access: str) -> ModelEvidence:
    """The evidence a model at `access` would have given: what the level hides is dropped, nothing else changes."""
    if access not in ACCESS_LEVELS:
        raise ValueError(f"unknown access level {access!r}")
    level = ACCESS_LEVELS.index(access)
    answers = ev.answers
    if level >= ACCESS_LEVELS.index("text"):
        answers = {ps: {pid: replace(c, top=None, logprob=None) for pid, c in by.items()} for ps, by in answers.items()}
    hidden = {"weights", "logits", "top_logprobs"} - set(("weights", "logits", "top_logprobs")[level:])
    return replace(ev, answers=answers,
                   weights=ev.weights if level == 0 else None,
                   scores=ev.scores if level <= 1 else {},
                   capabilities=frozenset(c for c in ev.capabilities if str(getattr(c, "value", c)) not in hidden))


@dataclass(frozen=True)
class ProbePlan:
    """Which probes of a set to send, and which test family reads the answers (its role)."""

    probe_set: ProbeSet
    n: int | None  # None: all probes
    role: str = ""  # "output", "next_token", "likelihood", "identity" ("" = by position, bundles before roles)

    @property
    def probes(self) -> Sequence[Probe]:
        return self.probe_set.head(self.n)


@dataclass(frozen=True)
class ScoreItem:
    """One text to score: a source model's sampled answer to a prompt."""

    id: str  # "<probe id>|<source fingerprint>"
    prompt: str
    continuation: str
    chat: bool


def score_item_id(probe_id: str, source_fingerprint: str) -> str:
    return f"{probe_id}|{source_fingerprint}"


def score_items(evidence: Mapping[str, ModelEvidence], sources: Sequence[str], plan: ProbePlan) -> list[ScoreItem]:
    """Every source model's sampled answer to every prompt of the plan, as texts for every model to score."""
    items = []
    for p in plan.probes:
        for src in sources:
            ev = evidence[src]
            items.append(ScoreItem(score_item_id(p.id, ev.model.fingerprint), p.text,
                                   ev.answers[plan.probe_set.id][p.id].text, plan.probe_set.chat))
    return items


YARDSTICK_SOURCE = "yardstick"  # the "source" part of a yardstick item's id: the text is the probe itself


def yardstick_items(plan: ProbePlan) -> list[ScoreItem]:
    """Neutral passages every model with logits scores as plain text: its competence, not its lineage."""
    return [ScoreItem(score_item_id(p.id, YARDSTICK_SOURCE), "", p.text, False) for p in plan.probes]


def competence(ev: ModelEvidence, plan: ProbePlan) -> float | None:
    """Mean per-byte log-likelihood of the yardstick passages (None without logits access)."""
    vals = [ev.scores[i.id].per_byte for i in yardstick_items(plan) if i.id in ev.scores]
    return float(np.mean(vals)) if vals and len(vals) == len(plan.probes) else None
