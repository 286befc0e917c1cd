"""The one small batched backend interface every model access level implements."""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Sequence

from provenance.errors import CapabilityError


class Capability(str, enum.Enum):
    """Access levels, strongest first (see DESIGN.md, 'Access levels')."""

    WEIGHTS = "weights"
    LOGITS = "logits"
    TOP_LOGPROBS = "top_logprobs"
    TEXT = "text"


@dataclass(frozen=True)
class Request:
    """One query: a prompt (plain completion, or a single user turn when `chat`) and decoding settings."""

    prompt: str
    max_new_tokens: int = 16
    top_k: int = 0  # how many next-token logprobs to return at the first generated position (0: none)
    chat: bool = False
    temperature: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "prompt": self.prompt,
            "max_new_tokens": self.max_new_tokens,
            "top_k": self.top_k,
            "chat": self.chat,
            "temperature": self.temperature,
        }


@dataclass(frozen=True)
class TopToken:
    """One entry of a next-token distribution: the decoded token, its id where known, its logprob."""

    token: str
    logprob: float
    token_id: int | None = None


@dataclass(frozen=True)
class Completion:
    """A backend's answer to one Request."""

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
class ScoreRequest:
    """Score `continuation` after `prompt` (rendered like a Request with the same `chat`)."""

    prompt: str
    continuation: str
    chat: bool = False


@dataclass(frozen=True)
class Score:
    logprob: float  # sum over the continuation's tokens
    n_tokens: int
    n_bytes: int  # UTF-8 bytes of the continuation: per-byte values compare across tokenizers

    def to_json(self) -> dict[str, Any]:
        return {"logprob": self.logprob, "n_tokens": self.n_tokens, "n_bytes": self.n_bytes}


class Backend(ABC):
    """A loaded model. Subclasses set `capabilities` and implement `generate`."""

    capabilities: frozenset[Capability] = frozenset({Capability.TEXT})

    def __init__(self, spec: str) -> None:
        self.spec = spec

    def require(self, capability: Capability, what: str) -> None:
        if capability not in self.capabilities:
            raise CapabilityError(f"{self.spec}: {what} needs '{capability.value}' access, which this backend lacks")

    @property
    def tokenizer_id(self) -> str | None:
        """A hash identifying the tokenizer, so tests know when token ids are comparable."""
        return None

    @abstractmethod
    def generate(self, requests: Sequence[Request]) -> list[Completion]:
        """Answer every request, in order. Greedy when temperature is 0."""

    def score(self, requests: Sequence["ScoreRequest"]) -> list["Score"]:
        """Log-likelihood of each continuation given its prompt (needs `logits` access)."""
        raise CapabilityError(f"{self.spec}: scoring text needs '{Capability.LOGITS.value}' access, which this backend lacks")

    def weight_sketch(self) -> dict[str, Any] | None:
        """Small weight matrices for the weights test, or None when weights are not accessible."""
        return None

    def close(self) -> None:  # noqa: B027 - an optional hook; most backends hold nothing to release
        """Release memory; the collector calls this before loading the next model."""
