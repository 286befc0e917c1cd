"""Engineer options: hub revisions, device and dtype (in the cache key and the manifest), endpoint limits, dry-run cost."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from provenance.errors import InputError
from tests.conftest import requires_models
from tests.hostile_fakes import audit_args, endpoints, run_cli

COMMIT = "0123456789abcdef0123456789abcdef01234567"


# -- hub ids pinned by revision ---------------------------------------------------------------------------------------

def test_hub_ids_take_a_revision() -> None:
    from provenance.models import SpecKind, parse_spec

    ms = parse_spec("org/model@v1.2")
    assert (ms.kind, ms.location, ms.revision) == (SpecKind.HUB, "org/model", "v1.2")
    assert parse_spec("org/model@refs/pr/3").revision == "refs/pr/3"
    assert parse_spec("org/model").revision is None
    for bad in ("org/model@", "org/model@../x", "org/model@a b"):
        with pytest.raises(InputError, match="revision|unknown model"):
            parse_spec(bad)


def _hub_cache(root: Path, repo: str, commit: str, branch: str = "main") -> Path:
    """A local hub cache laid out as huggingface_hub writes it (refs/<branch> -> snapshots/<commit>/files)."""
    from provenance.zoo.train import fresh_model, tiny_config

    base = root / f"models--{repo.replace('/', '--')}"
    snap = base / "snapshots" / commit
    fresh_model(tiny_config(256, 32, 1), 0).save_pretrained(str(snap))
    (base / "refs").mkdir(parents=True)
    (base / "refs" / branch).write_text(commit)
    return snap


def test_a_hub_model_from_the_local_cache_records_repo_revision_and_commit(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from provenance.models import resolve

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _hub_cache(tmp_path / "hub", "acme/tiny", COMMIT)
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(c, "HF_HUB_OFFLINE", True)
    rm = resolve("acme/tiny@main")
    assert rm.source["repo"] == "acme/tiny" and rm.source["revision"] == "main" and rm.source["commit"] == COMMIT
    assert resolve(f"acme/tiny@{COMMIT}").fingerprint == rm.fingerprint  # the commit itself pins the same files
    with pytest.raises(InputError, match="not in the local hub cache"):
        resolve("acme/tiny@v9")


@pytest.mark.parametrize("error, message", [
    ("GatedRepoError", "is gated"), ("RepositoryNotFoundError", "does not exist"),
    ("RevisionNotFoundError", "has no revision"), ("LocalEntryNotFoundError", "not in the local hub cache"),
])
def test_each_hub_failure_has_its_own_line(error: str, message: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub
    from huggingface_hub import errors

    from provenance.models import hub_snapshot

    cls = getattr(errors, error)

    def fail(*a: Any, **k: Any) -> None:
        if issubclass(cls, errors.HfHubHTTPError):  # HTTP errors carry the hub's response
            import httpx

            raise cls("boom", response=httpx.Response(404, request=httpx.Request("GET", "https://hub.invalid")))
        raise cls("boom")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fail)
    with pytest.raises(InputError, match=message):
        hub_snapshot("acme/tiny", "v1")


def test_a_full_disk_is_not_called_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    import huggingface_hub

    from provenance.models import hub_snapshot

    def full(*a: Any, **k: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", full)
    with pytest.raises(InputError, match="no space left"):
        hub_snapshot("acme/tiny")


# -- device and dtype ---------------------------------------------------------------------------------------------------

def test_numerics_resolve_before_loading_and_refuse_an_absent_device() -> None:
    import torch

    from provenance.models import LoadOptions, resolve_numerics

    gpu = torch.cuda.is_available()
    assert resolve_numerics(LoadOptions()) == ({"device": "cuda", "dtype": "bfloat16"} if gpu
                                                else {"device": "cpu", "dtype": "float32"})
    assert resolve_numerics(LoadOptions(device="cpu", dtype="bfloat16")) == {"device": "cpu", "dtype": "bfloat16"}
    if not gpu:
        with pytest.raises(InputError, match="CUDA device"):
            resolve_numerics(LoadOptions(device="cuda:1"))
    with pytest.raises(InputError, match="unknown device"):
        resolve_numerics(LoadOptions(device="tpu"))


def test_device_and_dtype_are_part_of_the_cache_key() -> None:
    from provenance.cache import entry_key

    a = entry_key("f" * 64, "s", {"t": 0}, "greedy", {"device": "cpu", "dtype": "float32"})
    b = entry_key("f" * 64, "s", {"t": 0}, "greedy", {"device": "cpu", "dtype": "bfloat16"})
    assert a != b and a["numerics"]["dtype"] == "float32"


@requires_models
@pytest.mark.slow
def test_a_bfloat16_run_is_recorded_and_loaded_as_asked(tmp_path: Path) -> None:
    """The same tiny model at two dtypes: the same fingerprint, each recorded as run, the backend in the asked dtype."""
    from provenance.zoo.build import _tokenizer
    from provenance.zoo.train import fresh_model, save, tiny_config

    tok = _tokenizer()
    d = save(fresh_model(tiny_config(len(tok), 32, 1, bos=tok.bos_token_id, eos=tok.eos_token_id,
                                     pad=tok.eos_token_id), 0), tok, tmp_path / "tiny", "tiny model for dtype tests")
    r = run_cli("compare", str(d), str(d), "--budget", "2", "--no-progress", "--device", "gpu0")
    assert r.returncode == 2 and "unknown device" in r.stderr and "Traceback" not in r.stderr
    from provenance.models import LoadOptions, resolve

    f32 = resolve(str(d), LoadOptions(dtype="float32"))
    bf16 = resolve(str(d), LoadOptions(dtype="bfloat16"))
    assert f32.fingerprint == bf16.fingerprint  # the same files ...
    assert f32.identity().source["numerics"]["dtype"] == "float32"  # ... run two ways, each recorded
    assert bf16.identity().source["numerics"]["dtype"] == "bfloat16"
    backend = bf16.load()
    try:
        import torch

        assert next(backend.model.parameters()).dtype == torch.bfloat16
    finally:
        backend.close()


# -- endpoint limits, connections, dry-run cost ---------------------------------------------------------------------------

@pytest.mark.slow
def test_max_requests_stops_before_the_limit_and_a_rerun_goes_on(tmp_path: Path) -> None:
    with endpoints() as servers:
        r = run_cli(*audit_args(servers, tmp_path / "b", "--max-requests", "20", budget=40))
        assert r.returncode == 2 and "--max-requests 20 reached" in r.stderr and "Traceback" not in r.stderr, r.stderr
        calls = {role: s.backend.calls for role, s in servers.items()}
        assert all(n <= 20 for n in calls.values()) and any(calls.values()), calls  # batches up to the limit, no more
        r = run_cli(*audit_args(servers, tmp_path / "c", "--max-connections", "2", budget=40))
        assert r.returncode == 0, r.stderr
        # The rerun asked only what the first run had not got (the answers it had are served from the cache).
        assert all(s.backend.calls - calls[role] < 80 for role, s in servers.items())


def test_max_tokens_is_an_upper_bound_checked_per_batch(tmp_path: Path) -> None:
    from provenance.errors import InputError
    from provenance.models.limits import Usage

    u = Usage()
    u.charge("e", 16, 160, None, 200)
    with pytest.raises(InputError, match="--max-tokens 200 would be exceeded"):
        u.charge("e", 16, 160, None, 200)
    assert u.spent["e"] == [16, 160]  # a refused batch is not counted
    u.charge("other", 16, 160, None, 200)  # per endpoint


def test_dry_run_prices_each_endpoint(tmp_path: Path) -> None:
    with endpoints() as servers:
        r = run_cli(*audit_args(servers, tmp_path / "never", "--dry-run", "--json", "--price", "2.5,10",
                                "--max-connections", "8", budget=40))
        assert r.returncode == 0, r.stderr
        plan = json.loads(r.stdout)
        costs = plan["endpoint_costs"]
        assert len(costs) == len(servers) and not (tmp_path / "never").exists()
        one = next(iter(costs.values()))
        assert one["requests"] == 40 and one["connections"] == 8 and one["new_tokens"] > 0
        assert one["score_requests_if_served"] == 12  # the yardstick passages (the likelihood set is off here)
        assert one["cost"] == pytest.approx((one["prompt_tokens"] * 2.5 + one["new_tokens"] * 10) / 1e6, abs=1e-4)
        r = run_cli(*audit_args(servers, tmp_path / "never", "--dry-run", "--price", "cheap", budget=40))
        assert r.returncode == 2 and "prices per million tokens" in r.stderr


# -- per-model settings in an audit file ------------------------------------------------------------------------------

def test_per_model_settings_in_an_audit_file(tmp_path: Path) -> None:
    """dtype per control and per suspect ([models."SPEC"]), checked when read; a bad one is one line naming it."""
    from provenance.zoo.train import fresh_model, tiny_config

    d = tmp_path / "tiny"  # resolving hashes files only: no tokenizer needed for a dry run
    fresh_model(tiny_config(256, 32, 1), 0).save_pretrained(str(d))
    cfg = tmp_path / "audit.toml"
    cfg.write_text(f'suspect = "{d}"\nreferences = ["fake:t1"]\nout = "{tmp_path / "never"}"\n'
                   f'[models."{d}"]\ndtype = "bfloat16"\n'
                   + "".join(f'[[control]]\nspec = "fake:c{i}"\nlineage = "c{i}"\n' for i in range(1, 4)))
    r = run_cli("audit", "--config", str(cfg), "--dry-run", "--json")
    assert r.returncode == 0, r.stderr
    plan = json.loads(r.stdout)
    assert plan["models"][str(d)]["numerics"]["dtype"] == "bfloat16"
    assert plan["models"]["fake:c1"]["numerics"] is None  # a fake model has no arithmetic to choose
    cfg.write_text(cfg.read_text().replace('dtype = "bfloat16"', 'dtype = "float8"'))
    r = run_cli("audit", "--config", str(cfg), "--dry-run")
    assert r.returncode == 2 and "dtype 'float8' is not one of" in r.stderr and str(d) in r.stderr, r.stderr


def test_a_panel_revision_pins_a_hub_control(tmp_path: Path) -> None:
    from provenance.panel import apply_settings, load_panel

    f = tmp_path / "p.toml"
    f.write_text('[[control]]\nspec = "acme/ctrl"\nrevision = "v2"\nlineage = "acme"\napi_key_env = "ACME_KEY"\n')
    panel = load_panel(f)
    specs, options, keys = apply_settings(panel.specs, panel.settings)
    assert specs == ["acme/ctrl@v2"] and options == {} and keys == ("acme/ctrl=ACME_KEY",)
    f.write_text('[[control]]\nspec = "acme/ctrl"\napi_key_env = "not a name"\n')
    with pytest.raises(InputError, match="api_key_env must name an environment variable"):
        load_panel(f)


def test_matrix_reads_the_same_file_format(tmp_path: Path) -> None:
    cfg = tmp_path / "m.toml"
    cfg.write_text('models = ["fake:a"]\nout = "x"\n[[control]]\nspec = "fake:c1"\n')
    r = run_cli("matrix", "--config", str(cfg), cwd=tmp_path)
    assert r.returncode == 2 and "at least two distinct models" in r.stderr  # its models came from the file


# -- the tool's own commit and evidentiary mode ------------------------------------------------------------------------

def test_the_commit_comes_from_the_checkout_with_the_hash_of_its_diff(monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess

    from provenance.report import manifest

    info = manifest._git_commit()
    root = Path(manifest.__file__).resolve().parents[2]
    if not (root / ".git").exists():
        pytest.skip("not a git checkout (an installed copy reads its build metadata: tests/test_wheel.py)")
    head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert info["commit"] == head and info["commit_source"] == "git checkout"
    assert (info["diff_sha256"] is not None) == bool(info["dirty"])
    monkeypatch.setattr(manifest, "_git_commit", lambda: {"commit": head, "dirty": True, "diff_sha256": "ab" * 32,
                                                          "commit_source": "git checkout"})
    with pytest.raises(InputError, match="--evidentiary: the tool's code differs from commit"):
        manifest.evidentiary_check()
    monkeypatch.setattr(manifest, "_git_commit", lambda: {"commit": None, "dirty": None, "diff_sha256": None,
                                                          "commit_source": None})
    with pytest.raises(InputError, match="commit is unknown"):
        manifest.evidentiary_check()


def test_setup_writes_build_metadata() -> None:
    import importlib.util

    root = Path(__file__).resolve().parent.parent
    spec = importlib.util.spec_from_file_location("provenance_setup", root / "setup.py")
    assert spec is not None and spec.loader is not None
    import setuptools

    calls: list[Any] = []
    orig = setuptools.setup
    setuptools.setup = lambda **kw: calls.append(kw)  # type: ignore[assignment]
    try:
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    finally:
        setuptools.setup = orig  # type: ignore[assignment]
    info = mod.build_info()
    assert set(info) == {"commit", "dirty", "diff_sha256", "source"}
    assert info["commit"] is None or len(info["commit"]) == 40
