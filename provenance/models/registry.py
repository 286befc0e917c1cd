"""One registry entry per backend kind: how a parsed spec is identified (resolved) and how it is loaded.

Adding a backend is a module with its Backend subclass plus one `register(BackendKind(...))` here; nothing outside
`provenance/models/` branches on a spec's kind: callers ask a ResolvedModel whether it is `remote` and ask a loaded
backend for its capabilities.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from provenance.errors import InputError
from provenance.models.spec import ModelSpec, SpecKind

if TYPE_CHECKING:
    from provenance.models import LoadOptions, ResolvedModel
    from provenance.models.base import Backend


@dataclass(frozen=True)
class BackendKind:
    kind: SpecKind
    resolve: Callable[[ModelSpec, "LoadOptions"], "ResolvedModel"]
    load: Callable[["ResolvedModel"], "Backend"]
    remote: bool = False  # reached over the network: costs no local memory, probed concurrently, no weight files


BACKENDS: dict[SpecKind, BackendKind] = {}


def register(entry: BackendKind) -> BackendKind:
    if entry.kind in BACKENDS:
        raise ValueError(f"backend kind {entry.kind.value} registered twice")
    BACKENDS[entry.kind] = entry
    return entry


def entry(kind: SpecKind) -> BackendKind:
    try:
        return BACKENDS[kind]
    except KeyError:
        raise InputError(f"no backend registered for model kind '{kind.value}'") from None


# -- the built-in kinds ----------------------------------------------------------------------------------------

def _resolve_http(ms: ModelSpec, options: "LoadOptions") -> "ResolvedModel":
    from provenance.models import ResolvedModel
    from provenance.models import fingerprint as fp
    from provenance.models.http import describe_endpoint

    options = options.for_endpoint(ms)  # this endpoint's credential alone (provenance/secrets.py)
    model, meta, observed = describe_endpoint(ms.location, ms.model_name, options)
    # The fingerprint holds what identifies the model (URL, id, owner, root), never a timestamp; see describe_endpoint.
    return ResolvedModel(ms, fp.endpoint_fingerprint(ms.location, model, meta),
                         {"url": ms.location, "model": model, "server": meta, "observed": observed,
                          "name_kind": model_name_kind(model)}, options=options)


def model_name_kind(name: str) -> str:
    """"dated snapshot" when the served name carries a release date (`gpt-4o-2024-08-06`, `claude-3-5-sonnet-20241022`,
    OpenAI's `gpt-4-0613`), else "alias": a name the provider may point at another model later. A record, never part of
    the fingerprint: the name says what the provider promises, the fingerprint what the server reported."""
    import re

    if re.search(r"(?<!\d)20\d{2}-?(0[1-9]|1[0-2])-?(0[1-9]|[12]\d|3[01])(?!\d)", name):
        return "dated snapshot"
    if re.search(r"-(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])$", name):
        return "dated snapshot"
    return "alias"


def _load_http(rm: "ResolvedModel") -> "Backend":
    from provenance.models.access import EndpointAccess
    from provenance.models.http import HTTPBackend

    access = EndpointAccess.from_json(rm.access) if rm.access is not None else None
    return HTTPBackend(rm.spec.raw, rm.spec.location, rm.source["model"], rm.options, access=access,
                       concurrency=rm.options.max_connections)


def _resolve_gguf(ms: ModelSpec, options: "LoadOptions") -> "ResolvedModel":
    from provenance.models import ResolvedModel, resolve_numerics
    from provenance.models import fingerprint as fp
    from provenance.models.packaged import PACKAGED, installed_versions, resolve_packaged

    numerics = resolve_numerics(options)  # before hashing: an absent device is refused first
    packaged = ms.kind is SpecKind.PACKAGED
    gguf = resolve_packaged(ms.location) if packaged else Path(ms.location)
    digest = fp.hash_file_cached(gguf)
    source: dict[str, Any] = {"gguf": str(gguf), "numerics": numerics}
    lineage = None
    if packaged:
        source["packages"] = PACKAGED[ms.location].pip_names
        source["package_versions"] = installed_versions(PACKAGED[ms.location].pip_names)  # the weights' origin
        lineage = PACKAGED[ms.location].family
    return ResolvedModel(ms, digest, source, {gguf.name: digest}, gguf=gguf, options=options, lineage=lineage)


def _resolve_directory(ms: ModelSpec, options: "LoadOptions") -> "ResolvedModel":
    from provenance.models import ResolvedModel, hub_commit, hub_snapshot, resolve_numerics
    from provenance.models import fingerprint as fp
    from provenance.models.hf import check_directory

    numerics = resolve_numerics(options)  # before any download: an absent device is refused first
    path = hub_snapshot(ms.location, ms.revision) if ms.kind is SpecKind.HUB else Path(ms.location)
    check_directory(path, options.allow_unsafe_pickle)
    files = fp.directory_files(path)
    source: dict[str, Any] = {"path": str(path), "numerics": numerics}
    if ms.kind is SpecKind.HUB:  # what was asked for and what it resolved to: a branch moves, a commit does not
        source.update(repo=ms.location, revision=ms.revision or "main", commit=hub_commit(path))
    recipe = _recipe_file(path)
    if recipe is not None:  # how the model was made (matched controls): a reader can rebuild it, not only name it
        source["recipe"] = recipe
    return ResolvedModel(ms, fp.combine(files), source, files, local_path=path, options=options,
                         lineage=_lineage_file(path))


RECIPE_FILE = ".recipe.json"  # written by `controls build` and `zoo build` beside the weights (hidden: not fingerprinted)


def write_recipe(directory: Path, recipe: dict[str, Any]) -> bool:
    """Write `recipe` beside a model's weights unless one is there already (a recipe once written is never rewritten:
    a later build with other settings would misstate how the model was made). True when written."""
    from provenance.fsutil import atomic_write_json

    if (directory / RECIPE_FILE).is_file():
        return False
    atomic_write_json(directory / RECIPE_FILE, recipe)
    return True


def _recipe_file(path: Path) -> dict[str, Any] | None:
    text = _hidden_text(path / RECIPE_FILE, 65536)
    try:
        data = json.loads(text) if text else None
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _hidden_text(f: Path, limit: int) -> str | None:
    """A small regular file's text (no link, at most `limit` bytes, UTF-8), else None: what a directory says about
    itself is read, never trusted to be well formed."""
    try:
        if f.is_file() and not f.is_symlink() and f.stat().st_size <= limit:
            return f.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    return None


LINEAGE_FILE = ".lineage"  # written by `provenance zoo` (and by anyone who knows a directory's lineage)


def _lineage_file(path: Path) -> str | None:
    """The lineage family a directory declares in `.lineage` (hidden: not part of its fingerprint), if any."""
    text = (_hidden_text(path / LINEAGE_FILE, 200) or "").strip()
    return text if text and text.isprintable() else None


def _load_local(rm: "ResolvedModel") -> "Backend":
    from provenance.models.hf import HFBackend, converted_gguf_dir

    if rm.local_path is None and rm.gguf is not None:
        # Converted lazily, at load time, so resolving (hashing) stays cheap.
        rm.local_path = converted_gguf_dir(rm.gguf, rm.fingerprint)
    assert rm.local_path is not None
    numerics = rm.numerics or {}
    return HFBackend(rm.spec.raw, rm.local_path, allow_unsafe_pickle=rm.options.allow_unsafe_pickle,
                     batch_size=rm.options.batch_size, device=numerics.get("device"), dtype=numerics.get("dtype"))


def _resolve_fake(ms: ModelSpec, options: "LoadOptions") -> "ResolvedModel":
    from provenance.fsutil import sha256_json
    from provenance.models import ResolvedModel
    from provenance.models.fake import parse_fake

    p = parse_fake(ms.location)
    return ResolvedModel(ms, sha256_json({"fake": p.canonical()}), {"fake": p.canonical()}, options=options,
                         lineage=p.family)


def _load_fake(rm: "ResolvedModel") -> "Backend":
    from provenance.models.fake import FakeBackend, parse_fake

    return FakeBackend(rm.spec.raw, parse_fake(rm.spec.location))


register(BackendKind(SpecKind.HTTP, _resolve_http, _load_http, remote=True))
register(BackendKind(SpecKind.GGUF, _resolve_gguf, _load_local))
register(BackendKind(SpecKind.PACKAGED, _resolve_gguf, _load_local))
register(BackendKind(SpecKind.DIRECTORY, _resolve_directory, _load_local))
register(BackendKind(SpecKind.HUB, _resolve_directory, _load_local))
register(BackendKind(SpecKind.FAKE, _resolve_fake, _load_fake))
