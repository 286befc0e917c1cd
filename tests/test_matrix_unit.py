"""Matrix plumbing: the corrections, indirect-edge pruning, labels, and bad input (detection is in test_zoo_micro)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.test_cli import assert_input_error, run_cli
from provenance.matrix import benjamini_hochberg, n_permutations_for, prune_indirect, short_names
from provenance.verdict import attribute
from tests.conftest import error_lines


def test_benjamini_hochberg_matches_the_textbook_step_up() -> None:
    p = [0.01, 0.04, 0.03, 0.005, 0.5]
    # sorted: 0.005, 0.01, 0.03, 0.04, 0.5 -> p*m/rank = 0.025, 0.025, 0.05, 0.05, 0.5 (then running minimum from the top)
    assert np.allclose(benjamini_hochberg(p), [0.025, 0.05, 0.05, 0.025, 0.5])
    assert benjamini_hochberg([0.9]) == [0.9]


def test_the_weakest_edge_of_a_triangle_is_indirect() -> None:
    edges = [{"a": "T", "b": "S1", "p_value": 0.001, "strength": 9.0},
             {"a": "T", "b": "S2", "p_value": 0.002, "strength": 8.0},
             {"a": "S1", "b": "S2", "p_value": 0.03, "strength": 3.0},
             {"a": "T", "b": "X", "p_value": 0.01, "strength": 4.0}]
    assert prune_indirect(edges) == {("S1", "S2")}


def test_labels_and_permutation_floor() -> None:
    names = short_names(["/z/students/a", "/y/students/a", "/z/teachers/t", "smollm2-135m-instruct"])
    assert len(set(names.values())) == 4 and names["/z/teachers/t"] == "t"
    assert 1 / (n_permutations_for(15, 0.05) + 1) * 2 * 4 * 15 < 0.05  # the floor survives the correction


def test_attribution_says_none_when_nothing_is_flagged() -> None:
    entries = [{"spec": "r1", "verdict": "independent", "p_value": 0.6, "tests": [{"p_value": 0.6}]},
               {"spec": "r2", "verdict": "inconclusive", "p_value": 0.03, "tests": [{"p_value": 0.03}]}]
    a = attribute(entries)
    assert a["attribution"] == "none" and a["status"] == "inconclusive" and a["ranking"][0]["reference"] == "r2"
    entries[0].update(verdict="distilled", p_value=0.001)
    assert attribute(entries)["attribution"] == "r1"


def test_matrix_needs_two_models(tmp_path: Path) -> None:
    assert_input_error(run_cli("matrix", "smollm2-135m-instruct", "smollm2-135m-instruct", "--out", str(tmp_path / "m")),
                       "at least two distinct models")
    assert not (tmp_path / "m").exists()


def test_fleet_options_are_checked_before_any_work(tmp_path: Path) -> None:
    assert_input_error(run_cli("matrix", "smollm2-135m-instruct", "gemma-3-270m", "--executor", "ray",
                               "--out", str(tmp_path / "m")), "--executor ray needs --workers 2 or more")
    assert not (tmp_path / "m").exists()


def test_a_bad_model_in_a_worker_is_one_line(tmp_path: Path) -> None:
    """A checkpoint that fails in a worker process is reported like anywhere else: one line, exit 2."""
    for name in ("a", "b"):
        d = tmp_path / name
        d.mkdir()
        (d / "config.json").write_text('{"model_type": "llama", "architectures": ["LlamaForCausalLM"]}')
        (d / "model.safetensors").write_bytes(b"\xff" * 64)  # header length far beyond the file: not a checkpoint
    proc = run_cli("matrix", str(tmp_path / "a"), str(tmp_path / "b"), "--control", "smollm2-135m-instruct",
                   "--workers", "2", "--out", str(tmp_path / "m"), "--budget", "4", "--no-progress")
    assert proc.returncode == 2, proc.stderr
    lines = error_lines(proc.stderr)
    assert len(lines) == 1 and "safetensors" in lines[0], proc.stderr
    assert not list((tmp_path / "m").iterdir())  # checked writable up front; nothing written


def test_an_unreachable_ray_cluster_is_one_line(tmp_path: Path) -> None:
    """Ray would retry an unreachable address for minutes; the fleet checks it first and says so in one line."""
    import pytest

    pytest.importorskip("ray")
    proc = run_cli("matrix", "smollm2-135m-instruct", "gemma-3-270m", "-c", "qwen2.5-coder-0.5b-instruct",
                   "--workers", "2", "--executor", "ray", "--ray-address", "127.0.0.1:1", "--out", str(tmp_path / "m"))
    assert_input_error(proc, "cannot reach the Ray cluster at 127.0.0.1:1")
