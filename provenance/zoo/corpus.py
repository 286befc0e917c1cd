"""Public English prose that installs offline (Debian documentation packages, the Python standard library), cut into
numbered slices that the lineage zoo's independent teachers are trained on.

Every source is read from files a package installed; nothing is downloaded at run time. A source whose package is
missing is skipped (the stdlib source needs no package at all), and the corpus records which sources it used, their
package versions and licences, and the SHA-256 of every slice, so a study can say exactly what its teachers read.
"""

from __future__ import annotations

import ast
import gzip
import hashlib
import re
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

CORPUS_VERSION = "1"


@dataclass(frozen=True)
class Source:
    id: str
    title: str
    package: str  # the Debian package that installs it ("" = part of Python itself)
    licence: str
    paths: tuple[str, ...]
    reader: str  # name of the reader function below


SOURCES: tuple[Source, ...] = (
    Source("pydocs", "The Python 3.11 documentation (tutorial, HOWTOs, FAQ, language and library reference)",
           "python3.11-doc", "PSF-2.0 (Python Software Foundation License Version 2; doc examples 0BSD)",
           ("/usr/share/doc/python3.11/html/_sources",), "rst_tree"),
    Source("jargon", "The Jargon File 4.4.7 (Eric S. Raymond)", "jargon-text", "public domain",
           ("/usr/share/doc/jargon-text/jargon.txt.gz",), "plain"),
    Source("debref", "Debian Reference (Osamu Aoki)", "debian-reference-en", "GPL-2+",
           ("/usr/share/debian-reference/debian-reference.en.txt.gz",), "plain"),
    Source("pytopics", "pydoc's language-reference topics (pydoc_data.topics, from the Python reference manual)", "",
           "PSF-2.0 (part of the Python interpreter this runs on)", (), "pytopics"),
    Source("stdlib", "Docstrings of the Python standard library's modules, classes and functions", "",
           "PSF-2.0 (part of the Python interpreter this runs on)", (), "stdlib"),
)

_RST_ROLE = re.compile(r":[a-zA-Z:+-]+:`~?!?([^`<]*?)(?:\s*<[^>]*>)?`")
_RST_LINK = re.compile(r"`([^`<]+?)\s*<[^>]*>`_+")
_RST_MARK = re.compile(r"``|\*\*|(?<!\w)\*(?=\w)|(?<=\w)\*(?!\w)|`_*|\|")
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*")
_LEAD = re.compile(r"^(?:\d+\.\s+)?(?:\[[^\]]{1,40}\]\s*)?")
_QUOTES = str.maketrans({"\u201c": '"', "\u201d": '"', "\u2018": "'", "\u2019": "'", "\u2014": " - ", "{": "", "}": ""})


def _paragraphs(text: str) -> Iterator[str]:
    for block in re.split(r"\n\s*\n", text):
        yield " ".join(block.split())


def _clean(par: str) -> str:
    par = _RST_LINK.sub(r"\1", par)
    par = _RST_ROLE.sub(r"\1", par)
    par = _RST_MARK.sub("", par)
    return " ".join(par.split())


def is_prose(par: str) -> bool:
    """A paragraph of running English text: long enough, mostly words, ends like a sentence, no markup or code."""
    if len(par) < 80 or len(par) > 4000 or not (par[0].isupper() or par[0] == '"'):
        return False
    if par[-1] not in ".!?\"')" or any(s in par for s in (">>>", "::", "+--", "==", "{", "}", "http", "\\", "    ")):
        return False
    tokens = par.split()
    words = [t for t in tokens if _WORD.fullmatch(t.strip(".,;:!?()\"'"))]
    return len(tokens) >= 12 and len(words) >= 0.8 * len(tokens)


def _read_plain(src: Source) -> Iterator[tuple[str, str]]:
    for p in src.paths:
        path = Path(p)
        raw = gzip.open(path, "rt", encoding="utf-8", errors="replace").read() if path.suffix == ".gz" else path.read_text(
            encoding="utf-8", errors="replace")
        for par in _paragraphs(raw):  # the Jargon File marks cross-references {so} and numbers senses "1. [techspeak]"
            yield path.name, " ".join(_LEAD.sub("", par.translate(_QUOTES)).split())


def _read_rst_tree(src: Source) -> Iterator[tuple[str, str]]:
    for p in src.paths:
        root = Path(p)
        for f in sorted(root.rglob("*.txt")):
            rel = str(f.relative_to(root))
            if rel.startswith(("c-api", "whatsnew/changelog", "license")):
                continue  # C API prototypes and the raw changelog are not prose; the licence is legal boilerplate
            for par in _paragraphs(f.read_text(encoding="utf-8", errors="replace")):
                if not par.startswith(".."):
                    yield rel, _clean(par)


def _read_pytopics(src: Source) -> Iterator[tuple[str, str]]:
    import pydoc_data.topics as topics

    for key in sorted(topics.topics):
        for par in _paragraphs(topics.topics[key]):
            yield f"topics/{key}", par


def _read_stdlib(src: Source) -> Iterator[tuple[str, str]]:
    root = Path(sysconfig.get_paths()["stdlib"])
    skip = ("test", "idlelib", "site-packages", "lib2to3", "tkinter", "turtledemo", "ensurepip", "__pycache__")
    for f in sorted(root.rglob("*.py")):
        rel = f.relative_to(root)
        if rel.parts[0] in skip or any(part in skip for part in rel.parts):
            continue
        try:
            tree = ast.parse(f.read_text(encoding="utf-8", errors="replace"))
        except (SyntaxError, ValueError):
            continue
        nodes = [tree] + [n for n in ast.walk(tree) if isinstance(n, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))]
        for node in nodes:
            doc = ast.get_docstring(node, clean=True)
            if doc:
                for par in _paragraphs(doc):
                    yield str(rel), par


READERS: dict[str, Callable[[Source], Iterator[tuple[str, str]]]] = {
    "plain": _read_plain, "rst_tree": _read_rst_tree, "pytopics": _read_pytopics, "stdlib": _read_stdlib}


def available(src: Source) -> bool:
    return all(Path(p).exists() for p in src.paths)


def package_version(package: str) -> str:
    if not package:
        return f"python {sys.version.split()[0]}"
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True, timeout=30)
        return out.stdout.strip() if out.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def source_paragraphs(src: Source) -> list[str]:
    """The source's prose paragraphs, de-duplicated, in a fixed order."""
    seen: set[str] = set()
    out = []
    for _, par in READERS[src.reader](src):
        if is_prose(par) and par not in seen:
            seen.add(par)
            out.append(par)
    return out


def build_slices(slice_chars: int, sources: tuple[Source, ...] = SOURCES) -> tuple[dict[str, str], list[dict[str, object]]]:
    """Cut each available source, in document order, into consecutive slices of about `slice_chars` characters.

    Returns the slices ({slice id: text}) and a manifest entry per source (package, version, licence, sizes).
    Consecutive cutting keeps a document's paragraphs together, so two slices share no paragraph."""
    slices: dict[str, str] = {}
    manifest: list[dict[str, object]] = []
    for src in sources:
        if not available(src):
            continue
        pars = source_paragraphs(src)
        ids = []
        cur: list[str] = []
        size = 0
        for par in pars:
            cur.append(par)
            size += len(par) + 1
            if size >= slice_chars:
                sid = f"{src.id}-{len(ids):03d}"
                slices[sid] = "\n".join(cur)
                ids.append(sid)
                cur, size = [], 0
        if size >= slice_chars // 2:  # a short tail is dropped rather than making one slice unlike the others
            sid = f"{src.id}-{len(ids):03d}"
            slices[sid] = "\n".join(cur)
            ids.append(sid)
        manifest.append({"source": src.id, "title": src.title, "package": src.package or "(python)",
                         "version": package_version(src.package), "licence": src.licence, "paths": list(src.paths),
                         "paragraphs": len(pars), "chars": sum(len(p) + 1 for p in pars), "slices": ids})
    # Sorted by id, the order a frozen corpus reads back in (slices.json is written with sorted keys): a plan built
    # from the slices' order must come out the same on the run that cut them and on every run that reads them back.
    return dict(sorted(slices.items())), manifest


def slice_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
