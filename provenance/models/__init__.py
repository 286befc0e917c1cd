"""Model access: resolve a spec to an identified model (fingerprint, source) and load a backend on demand."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from provenance.errors import InputError
from provenance.evidence import UNKNOWN_LINEAGE, ModelIdentity
from provenance.models.base import Backend, Capability, Completion, Request, TopToken
from provenance.models.spec import ModelSpec, SpecKind, parse_spec

__all__ = [
    "Backend", "Capability", "Completion", "Request", "TopToken", "ModelSpec", "SpecKind",
    "parse_spec", "ResolvedModel", "resolve", "LoadOptions",
]


@dataclass(frozen=True)
class LoadOptions:
    allow_unsafe_pickle: bool = False
    batch_size: int = 16
    http_timeout: float = 60.0
    http_retries: int = 5
    api_key: str | None = None  # Python API only: an explicit Bearer key for every endpoint of this call
    # Per endpoint: ((spec as given or its base URL, Authorization header value), ...); see provenance/secrets.py.
    credentials: tuple[tuple[str, str], ...] = ()
    authorization: str | None = field(default=None, repr=False)  # set by resolve() for one endpoint only
    fresh: bool = False  # `--fresh`: no cached answer of an endpoint is replayed (an alias whose weights may move)

    def for_endpoint(self, spec: ModelSpec) -> "LoadOptions":
        """These options with the Authorization value of this endpoint alone (None when none was given for it)."""
        creds = dict(self.credentials)
        auth = creds.get(spec.raw) or creds.get(spec.location) or creds.get(spec.location.rstrip("/"))
        if auth is None and self.api_key:
            auth = f"Bearer {self.api_key}"
        if auth is not None:
            from provenance.secrets import check_transport, register

            register(auth)
            check_transport(spec.location)
        return replace(self, authorization=auth)


@dataclass
class ResolvedModel:
    """A model whose identity is fixed before it is queried: fingerprint plus where it came from."""

    spec: ModelSpec
    fingerprint: str
    source: dict[str, Any]
    files: dict[str, str] = field(default_factory=dict)
    local_path: Path | None = None  # directory that the transformers backend loads
    gguf: Path | None = None  # GGUF source, converted to local_path at first load
    options: LoadOptions = field(default_factory=LoadOptions)
    lineage: str | None = None  # lineage family, when known (packaged and fake models; a controls panel sets others)
    access: dict[str, Any] | None = None  # an endpoint's discovered access (models/access.py), set before its queries

    @property
    def label(self) -> str:
        return self.spec.raw

    @property
    def remote(self) -> bool:
        """Reached over the network: no local memory, no weight files, probed concurrently with local models."""
        from provenance.models.registry import entry

        return entry(self.spec.kind).remote

    def identity(self, lineage: str | None = None) -> ModelIdentity:
        """The frozen identity that evidence carries (no loader); `lineage` overrides what resolving found."""
        return ModelIdentity(self.label, self.fingerprint, self.spec.kind.value, dict(self.source), dict(self.files),
                             lineage or self.lineage or UNKNOWN_LINEAGE)

    def to_json(self) -> dict[str, Any]:
        return self.identity().to_json()

    def load(self) -> Backend:
        from provenance.models.registry import entry

        return entry(self.spec.kind).load(self)


def resolve(spec: str | ModelSpec, options: LoadOptions | None = None) -> ResolvedModel:
    """Identify a model (hash its files, or ask the endpoint who it is) without loading its weights."""
    from provenance.models.registry import entry

    options = options or LoadOptions()
    ms = parse_spec(spec) if isinstance(spec, str) else spec
    return entry(ms.kind).resolve(ms, options)


def hub_snapshot(repo_id: str) -> Path:
    """Download (or find in the local hub cache) the files of a hub model; safetensors only."""
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id, allow_patterns=["*.json", "*.safetensors", "*.model", "*.txt", "tokenizer*"]))
    except Exception as exc:
        raise InputError(f"hub model '{repo_id}' is not available offline and the hub is unreachable ({type(exc).__name__})") from exc
