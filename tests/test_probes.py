"""Probe library: sets validate, hash stably, and malformed files get an error naming the line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from provenance.errors import InputError
from provenance.probeset import list_sets, load, load_file


def test_library_validates_and_hashes_stably() -> None:
    sets = {s.id: s for s in list_sets()}
    assert {"continuation", "next-token"} <= set(sets)
    cont = sets["continuation"]
    assert len(cont.probes) == 2000 and len({p.text for p in cont.probes}) == 2000
    again = load("continuation")
    assert again.sha256 == cont.sha256 and again.probes == cont.probes


def test_content_change_changes_hash(tmp_path: Path) -> None:
    src = json.loads(Path(load("next-token").path).read_text())
    src["prompts"][0] = "A different context"
    f = tmp_path / "p.json"
    f.write_text(json.dumps(src))
    assert load_file(f).sha256 != load("next-token").sha256


def test_malformed_json_names_line(tmp_path: Path) -> None:
    f = tmp_path / "bad.json"
    f.write_text('{\n  "id": "x",\n  "version": "1.0.0",\n  oops\n}\n')
    with pytest.raises(InputError, match=r"bad.json:4:"):
        load_file(f)


def test_invalid_field_names_line(tmp_path: Path) -> None:
    f = tmp_path / "bad.json"
    f.write_text('{\n "id": "x",\n "version": "1.0.0",\n "family": "nope",\n "description": "d",\n'
                 ' "mode": "completion",\n "decoding": {},\n "prompts": ["a"]\n}\n')
    with pytest.raises(InputError, match=r"bad.json:4: 'family'"):
        load_file(f)


def test_empty_file(tmp_path: Path) -> None:
    f = tmp_path / "empty.json"
    f.write_text("")
    with pytest.raises(InputError, match="empty probe file"):
        load_file(f)
