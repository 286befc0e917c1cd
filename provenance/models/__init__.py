"""Model access: resolve a spec to an identified model (fingerprint, source) and load a backend on demand."""

from __future__ import annotations

import errno
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from provenance.errors import InputError
from provenance.evidence import UNKNOWN_LINEAGE, ModelIdentity
from provenance.models.limits import Usage
from provenance.models.base import Backend, Capability, Completion, Request, TopToken
from provenance.models.spec import ModelSpec, SpecKind, parse_spec

__all__ = [
    "Backend", "Capability", "Completion", "Request", "TopToken", "ModelSpec", "SpecKind",
    "parse_spec", "ResolvedModel", "resolve", "LoadOptions", "DEVICES", "DTYPES", "resolve_numerics",
]

DEVICES = ("auto", "cpu", "cuda", "cuda:N", "mps", "map")  # "map": layers spread over every GPU, then the CPU
DTYPES = ("auto", "float32", "bfloat16", "float16")


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
    # Local models' arithmetic: part of every cache key and of the manifest (answers of two precisions never mix).
    device: str = "auto"  # auto: CUDA when visible, else the CPU
    dtype: str = "auto"  # auto: float32 on the CPU, bfloat16 on a GPU
    # Endpoints: requests in flight per endpoint, attempts per request, and hard limits per endpoint and run.
    max_connections: int = 4
    max_requests: int | None = None
    max_tokens: int | None = None
    usage: Usage = field(default_factory=Usage, compare=False, repr=False)  # what the limits count, for this run

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
    def numerics(self) -> dict[str, str] | None:
        """Local models: {"device", "dtype"} as resolved before loading (resolve_numerics), kept in `source`."""
        return self.source.get("numerics")

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


def check_device(device: str) -> str:
    """A --device value, checked for form only (whether it is present is resolve_numerics' question)."""
    d = device.strip().lower()
    if d in ("auto", "cpu", "cuda", "mps", "map") or re.fullmatch(r"cuda:\d{1,3}", d):
        return d
    raise InputError(f"unknown device {device!r} (auto, cpu, cuda, cuda:N, mps or map)")


def resolve_numerics(options: LoadOptions) -> dict[str, str]:
    """The device and dtype a local model will run with, decided before it loads (the cache key needs them).

    A device that is asked for but absent is bad input: silently running on the CPU would give another precision's
    answers under the name of the one requested.
    """
    import torch

    device = check_device(options.device)
    n_gpu = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if device == "auto":
        device = "cuda" if n_gpu else "cpu"
    elif device.startswith("cuda"):
        index = int(device.partition(":")[2] or 0)
        if index >= n_gpu:
            raise InputError(f"--device {device}: {n_gpu} CUDA device(s) visible")
    elif device == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise InputError("--device mps: no Apple GPU (MPS) is available")
    dtype = options.dtype.strip().lower()
    if dtype not in DTYPES:
        raise InputError(f"unknown dtype {options.dtype!r} ({', '.join(DTYPES)})")
    if dtype == "auto":
        dtype = "float32" if device == "cpu" or (device == "map" and not n_gpu) else "bfloat16"
    return {"device": device, "dtype": dtype}


HUB_FILES = ["*.json", "*.safetensors", "*.model", "*.txt", "tokenizer*"]


def hub_snapshot(repo_id: str, revision: str | None = None) -> Path:
    """The files of a hub model at `revision` (a branch, tag or commit; default the main branch), from the local hub
    cache or downloaded; safetensors only. Each way it can fail has its own line."""
    try:
        from huggingface_hub import errors, snapshot_download
    except ImportError:  # pragma: no cover - a dependency of transformers
        raise InputError(f"hub model '{repo_id}': huggingface_hub is not installed") from None
    at = f"'{repo_id}'" + (f" at revision '{revision}'" if revision else "")
    try:
        return Path(snapshot_download(repo_id, revision=revision, allow_patterns=HUB_FILES))
    except errors.GatedRepoError:
        raise InputError(f"hub model {at} is gated: accept its terms on the hub and log in (HF_TOKEN)") from None
    except errors.RevisionNotFoundError:
        raise InputError(f"hub model '{repo_id}' has no revision '{revision}'") from None
    except errors.RepositoryNotFoundError:
        raise InputError(f"hub model '{repo_id}' does not exist (or is private: log in with HF_TOKEN)") from None
    except errors.LocalEntryNotFoundError:
        raise InputError(f"hub model {at} is not in the local hub cache and the hub cannot be reached "
                         "(offline, HF_HUB_OFFLINE set, or no network)") from None
    except errors.HfHubHTTPError as exc:
        status = getattr(getattr(exc, "response", None), "status_code", None)
        raise InputError(f"hub model {at}: the hub answered HTTP {status}") from None
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise InputError(f"hub model {at}: no space left on the disk of the hub cache") from None
        raise InputError(f"hub model {at}: cannot download ({type(exc).__name__}: {exc.strerror or exc})") from None
    except Exception as exc:  # noqa: BLE001 - an unexpected hub failure is still one line for the user
        raise InputError(f"hub model {at}: cannot be fetched ({type(exc).__name__})") from None


def hub_commit(snapshot: Path) -> str | None:
    """The commit a hub snapshot directory holds (the hub cache names it snapshots/<commit>)."""
    return snapshot.name if snapshot.parent.name == "snapshots" and re.fullmatch(r"[0-9a-f]{40}", snapshot.name) else None
