"""Property-based fuzzing: probe files, model specs and evidence bundles never crash the tool, whatever their bytes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from provenance.errors import InputError
from provenance.models.spec import ModelSpec, parse_spec
from provenance.probeset import ProbeSet, load_file, validate

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                        HealthCheck.too_slow])

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(json_scalars, lambda kids: st.lists(kids, max_size=4)
                           | st.dictionaries(st.text(max_size=12), kids, max_size=4), max_leaves=20)

VALID_PROBES: dict[str, Any] = {
    "id": "fuzz", "version": "1.0.0", "family": "custom", "description": "d", "mode": "completion",
    "decoding": {"max_new_tokens": 4, "temperature": 0.0, "top_k": 5}, "prompts": ["a", {"id": "x", "text": "b"}],
}
VALID_GENERATOR = {"kind": "templates", "seed": 1, "n": 3, "templates": ["{a} {b}", "x {a}"],
                   "slots": {"a": ["p", "q"], "b": ["r"]}}
FIELDS = ["id", "version", "family", "description", "mode", "decoding", "prompts", "generator", "max_new_tokens",
          "temperature", "top_k", "kind", "seed", "n", "templates", "slots", "text"]


def _probe_outcome(data: Any) -> None:
    try:
        ps = validate(data, "fuzz.json", json.dumps(data, allow_nan=True) if isinstance(data, dict) else "")
    except InputError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("fuzz.json:")
        return
    assert isinstance(ps, ProbeSet) and ps.probes and len({p.id for p in ps.probes}) == len(ps.probes)
    assert len(ps.sha256) == 64


@FUZZ
@given(json_values)
def test_probe_validator_on_any_json(data: Any) -> None:
    _probe_outcome(data)


def _mutate(base: dict[str, Any], path: list[str], value: Any) -> dict[str, Any]:
    out = json.loads(json.dumps(base))
    node = out
    for key in path[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[path[-1]] = value
    return out


@FUZZ
@given(st.booleans(), st.lists(st.tuples(st.lists(st.sampled_from(FIELDS), min_size=1, max_size=3), json_values),
                               min_size=1, max_size=4))
def test_probe_validator_on_near_valid_files(generator: bool, edits: list[tuple[list[str], Any]]) -> None:
    """Valid files with a few fields replaced by arbitrary JSON: reaches deep into the validator's branches."""
    base = dict(VALID_PROBES)
    if generator:
        del base["prompts"]
        base["generator"] = VALID_GENERATOR
    for path, value in edits:
        base = _mutate(base, path, value)
    _probe_outcome(base)


@FUZZ
@given(st.binary(max_size=300) | st.text(max_size=300).map(lambda s: s.encode("utf-8", "surrogatepass")))
def test_probe_file_on_any_bytes(tmp_path: Path, blob: bytes) -> None:
    path = tmp_path / "fuzz.json"
    path.write_bytes(blob)
    try:
        load_file(path)
    except InputError as exc:
        assert "\n" not in str(exc)


@pytest.mark.parametrize("text", [
    '{"id": "x", "version": "1.0.0", "family": "custom", "description": "d", "mode": "completion",'
    ' "decoding": {"max_new_tokens": 1e400}, "prompts": ["a"]}',
    '{"id": "x", "version": "1.0.0", "family": "custom", "description": "d", "mode": "completion",'
    ' "decoding": {}, "prompts": ["\\ud800"]}',
    "[" * 100_000 + "]" * 100_000,
    '{"id": "x", "version": "1.0.0", "family": "custom", "description": "d", "mode": "completion", "decoding": {},'
    ' "generator": {"kind": "templates", "seed": 1, "n": 100000, "templates": ["{a}"], "slots": {"a": [1, 2]}}}',
])
def test_probe_file_regressions(tmp_path: Path, text: str) -> None:
    """Cases fuzzing found: infinite numbers, lone surrogates, deep nesting, generators that cannot yield n prompts."""
    path = tmp_path / "bad.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError):
        load_file(path)


@FUZZ
@given(st.text(max_size=60) | st.from_regex(r"https?://[\[\]:@a-z0-9.%/#]{0,30}", fullmatch=True))
def test_spec_parser_on_any_text(raw: str) -> None:
    try:
        spec = parse_spec(raw)
    except InputError as exc:
        assert "\n" not in str(exc)
        return
    assert isinstance(spec, ModelSpec) and spec.raw == raw


@pytest.mark.parametrize("raw", ["http://[", "http://[::1", "https://[x]/v1#m", "http://a:99999999/v1", "http://:80"])
def test_spec_parser_regressions(raw: str) -> None:
    """Malformed URLs (unbalanced IPv6 brackets) once raised ValueError from urlsplit instead of InputError."""
    try:
        parse_spec(raw)
    except InputError:
        pass


@pytest.fixture(scope="module")
def bundle(fake_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    # A fake-backend bundle: every file kind a real one has (weights evidence included), made in seconds.
    out = tmp_path_factory.mktemp("fuzz-bundle") / "bundle"
    shutil.copytree(fake_bundle, out)
    from provenance.report.verify import verify

    assert verify(out).ok
    return out


def _files(bundle: Path) -> list[str]:
    return sorted(p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(data=st.data())
def test_verify_reports_any_mutation(bundle: Path, data: st.DataObject) -> None:
    """Any byte edit, truncation or extension of any file (SHA256SUMS included) fails verification; nothing crashes."""
    from provenance.report.verify import verify

    names = _files(bundle)
    # SHA256SUMS and the evidence files are where a forger would aim; weight them up.
    name = data.draw(st.sampled_from(["SHA256SUMS", "results.json", "manifest.json", "transcripts.jsonl"]) | st.sampled_from(names))
    path = bundle / name
    original = path.read_bytes()
    kind = data.draw(st.sampled_from(["bytes", "truncate", "append"]))
    if kind == "bytes" and original:
        blob = bytearray(original)
        for _ in range(data.draw(st.integers(1, 4))):
            i = data.draw(st.integers(0, len(blob) - 1))
            blob[i] = data.draw(st.integers(0, 255))
        mutated = bytes(blob)
    elif kind == "truncate":
        mutated = original[: data.draw(st.integers(0, max(0, len(original) - 1)))]
    else:
        mutated = original + data.draw(st.binary(min_size=1, max_size=8))
    assume(mutated != original)
    try:
        path.write_bytes(mutated)
        report = verify(bundle)
    finally:
        path.write_bytes(original)
    assert not report.ok, f"{kind} edit of {name} went unnoticed"
    assert all("\n" not in p for p in report.problems)


@pytest.mark.parametrize("edit", ["crlf", "cr", "vertical-tab", "abs-path", "dotdot", "upper-hex", "duplicate"])
def test_verify_sums_regressions(bundle: Path, edit: str) -> None:
    """SHA256SUMS edits that a lenient parser accepted: other line breaks, paths out of the bundle, duplicate lines."""
    from provenance.report.verify import verify

    path = bundle / "SHA256SUMS"
    original = path.read_bytes()
    lines = original.decode().splitlines()
    first_digest, first_name = lines[0].split("  ", 1)
    mutated = {
        "crlf": original.replace(b"\n", b"\r\n"),
        "cr": original[:-1] + b"\r",
        "vertical-tab": original.replace(b"\n", b"\x0b", 1),
        "abs-path": original + f"{first_digest}  {(bundle / first_name).resolve()}\n".encode(),
        "dotdot": original + f"{first_digest}  ../{bundle.name}/{first_name}\n".encode(),
        "upper-hex": original.replace(first_digest.encode(), first_digest.upper().encode()),
        "duplicate": original + (lines[0] + "\n").encode(),
    }[edit]
    try:
        path.write_bytes(mutated)
        report = verify(bundle)
    finally:
        path.write_bytes(original)
    assert not report.ok, edit
