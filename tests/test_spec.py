"""Model spec parsing: every kind of spec, and one clear error for each bad one."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from provenance.errors import InputError
from provenance.models.spec import SpecKind, parse_spec


def test_packaged_and_hub_and_http(tmp_path: Path) -> None:
    assert parse_spec("smollm2-135m-instruct").kind is SpecKind.PACKAGED
    assert parse_spec("HuggingFaceTB/SmolLM2-135M").kind is SpecKind.HUB
    s = parse_spec("http://127.0.0.1:8000/v1#my-model")
    assert (s.kind, s.location, s.model_name) == (SpecKind.HTTP, "http://127.0.0.1:8000/v1", "my-model")
    assert parse_spec("https://api.example.com/v1/").model_name is None
    d = tmp_path / "m"
    d.mkdir()
    assert parse_spec(str(d)).kind is SpecKind.DIRECTORY
    g = tmp_path / "x.gguf"
    g.write_bytes(b"GGUF")
    assert parse_spec(str(g)).kind is SpecKind.GGUF


def test_unknown_name_suggests() -> None:
    with pytest.raises(InputError, match="did you mean 'smollm2-135m-instruct'"):
        parse_spec("smollm2-135m")


def test_missing_path() -> None:
    with pytest.raises(InputError, match="does not exist"):
        parse_spec("./no/such/model")
    with pytest.raises(InputError, match="does not exist"):
        parse_spec("missing.gguf")


def test_weight_file_instead_of_directory(tmp_path: Path) -> None:
    f = tmp_path / "pytorch_model.bin"
    f.write_bytes(b"x")
    with pytest.raises(InputError, match="directory"):
        parse_spec(str(f))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_parser_never_crashes(raw: str) -> None:
    """Fuzz: any string either parses or raises InputError, never anything else."""
    try:
        parse_spec(raw)
    except InputError as exc:
        assert "\n" not in str(exc)


def test_a_served_name_is_a_dated_snapshot_or_an_alias() -> None:
    """Checklist gap 8: the manifest says whether the provider promised a fixed model (a dated name) or an alias."""
    from provenance.models.registry import model_name_kind

    for name in ("gpt-4o-2024-08-06", "claude-3-5-sonnet-20241022", "gpt-4-0613", "gpt-3.5-turbo-1106"):
        assert model_name_kind(name) == "dated snapshot", name
    for name in ("gpt-4o", "m", "llama-3-8b", "qwen2.5-coder-0.5b-instruct", "model-1300", "x-20241301"):
        assert model_name_kind(name) == "alias", name
