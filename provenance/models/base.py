"""The one small batched backend interface every model access level implements."""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Sequence

from provenance.errors import CapabilityError
from provenance.evidence import Completion, Score, TopToken

__all__ = ["Backend", "Capability", "Completion", "Request", "Score", "ScoreRequest", "TopToken"]


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
    seed: int | None = None  # sampling seed of this request alone (temperature > 0): never the batch it arrived in

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "prompt": self.prompt,
            "max_new_tokens": self.max_new_tokens,
            "top_k": self.top_k,
            "chat": self.chat,
            "temperature": self.temperature,
        }
        if self.seed is not None:
            out["seed"] = self.seed
        return out


@dataclass(frozen=True)
class ScoreRequest:
    """Score `continuation` after `prompt` (rendered like a Request with the same `chat`)."""

    prompt: str
    continuation: str
    chat: bool = False


class Backend(ABC):
    """A loaded model. Subclasses set `capabilities` and implement `generate`."""

    capabilities: frozenset[Capability] = frozenset({Capability.TEXT})

    def __init__(self, spec: str) -> None:
        self.spec = spec

    @property
    def tokenizer_id(self) -> str | None:
        """A hash identifying the tokenizer, so tests know when token ids are comparable."""
        return None

    @abstractmethod
    def generate(self, requests: Sequence[Request]) -> list[Completion]:
        """Answer every request, in order. Greedy when temperature is 0."""

    def score(self, requests: Sequence["ScoreRequest"]) -> list[Score]:
        """Log-likelihood of each continuation given its prompt (needs `logits` access)."""
        raise CapabilityError(f"{self.spec}: scoring text needs '{Capability.LOGITS.value}' access, which this backend lacks")

    def rendered(self, prompt: str, chat: bool) -> str | None:
        """The text a local model was actually fed for a chat prompt (its chat template applied, any system prompt
        the template injects included), for the transcript; None when nothing was rendered (plain text, endpoints:
        they record the request body as sent)."""
        return None

    def decoding_details(self) -> dict[str, Any] | None:
        """What else decided a local model's answers besides the request (nucleus and top-k truncation, repetition
        penalties, stop tokens), for the transcript; None for endpoints, whose request body as sent is recorded."""
        return None

    def discover_access(self) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
        """What a served model's endpoint accepts, probed once: (access as JSON, transcript records of the probes).

        None for a model whose access is fixed by its backend (local weights, the fake)."""
        return None

    def weight_sketch(self) -> dict[str, Any] | None:
        """Small weight matrices for the weights test, or None when weights are not accessible."""
        return None

    def close(self) -> None:  # noqa: B027 - an optional hook; most backends hold nothing to release
        """Release memory; the collector calls this before loading the next model."""
