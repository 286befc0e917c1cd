"""Model access: resolve a spec to an identified model (fingerprint, source) and load a backend on demand."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from provenance.errors import InputError
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

    @property
    def label(self) -> str:
        return self.spec.raw

    @property
    def family(self) -> str | None:
        from provenance.models.packaged import family_of

        return family_of(self.spec.location) if self.spec.kind is SpecKind.PACKAGED else None

    def to_json(self) -> dict[str, Any]:
        return {
            "spec": self.spec.raw,
            "kind": self.spec.kind.value,
            "fingerprint": self.fingerprint,
            "source": self.source,
            "files": self.files,
        }

    def load(self) -> Backend:
        if self.spec.kind is SpecKind.HTTP:
            from provenance.models.http import HTTPBackend

            return HTTPBackend(self.spec.raw, self.spec.location, self.source["model"], self.options)
        from provenance.models.hf import HFBackend, converted_gguf_dir

        if self.local_path is None and self.gguf is not None:
            # Converted lazily, at load time, so resolving (hashing) stays cheap.
            self.local_path = converted_gguf_dir(self.gguf, self.fingerprint)
        assert self.local_path is not None
        return HFBackend(self.spec.raw, self.local_path, allow_unsafe_pickle=self.options.allow_unsafe_pickle,
                         batch_size=self.options.batch_size)


def resolve(spec: str | ModelSpec, options: LoadOptions | None = None) -> ResolvedModel:
    """Identify a model (hash its files, or ask the endpoint who it is) without loading its weights."""
    from provenance.models import fingerprint as fp

    options = options or LoadOptions()
    ms = parse_spec(spec) if isinstance(spec, str) else spec
    if ms.kind is SpecKind.HTTP:
        from provenance.models.http import describe_endpoint

        options = options.for_endpoint(ms)
        model, meta = describe_endpoint(ms.location, ms.model_name, options)
        return ResolvedModel(ms, fp.endpoint_fingerprint(ms.location, model, meta),
                             {"url": ms.location, "model": model, "server": meta}, options=options)
    if ms.kind in (SpecKind.GGUF, SpecKind.PACKAGED):
        from provenance.models.packaged import PACKAGED, resolve_packaged

        gguf = resolve_packaged(ms.location) if ms.kind is SpecKind.PACKAGED else Path(ms.location)
        digest = fp.hash_file_cached(gguf)
        source: dict[str, Any] = {"gguf": str(gguf)}
        if ms.kind is SpecKind.PACKAGED:
            source["packages"] = PACKAGED[ms.location].pip_names
        return ResolvedModel(ms, digest, source, {gguf.name: digest}, gguf=gguf, options=options)
    if ms.kind is SpecKind.HUB:
        path = _hub_snapshot(ms.location)
        ms = ModelSpec(ms.raw, SpecKind.HUB, ms.location)
    else:
        path = Path(ms.location)
    from provenance.models.hf import check_directory

    check_directory(path, options.allow_unsafe_pickle)
    files = fp.directory_files(path)
    return ResolvedModel(ms, fp.combine(files), {"path": str(path)}, files, local_path=path, options=options)


def _hub_snapshot(repo_id: str) -> Path:
    """Download (or find in the local hub cache) the files of a hub model; safetensors only."""
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id, allow_patterns=["*.json", "*.safetensors", "*.model", "*.txt", "tokenizer*"]))
    except Exception as exc:
        raise InputError(f"hub model '{repo_id}' is not available offline and the hub is unreachable ({type(exc).__name__})") from exc
