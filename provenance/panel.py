"""A controls panel file: the control models of an audit with their lineage, kind and notes (TOML, YAML or JSON).

Example (TOML)::

    [[control]]
    spec = "qwen2.5-coder-0.5b-instruct"
    lineage = "qwen"            # models of one lineage count as one unit of the null
    kind = "0.5B, instruct"     # free text: size, training, data where known
    notes = "Alibaba Cloud; public weights"

    dtype = "bfloat16"          # per-model settings (also: device, revision, api_key_env)

    [lineages]                  # lineage of any other model of the audit (suspect, references)
    "./ours" = "ours"

    [models."http://lab:8000/v1#theirs"]   # per-model settings of any other model of the audit
    api_key_env = "LAB_KEY"
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from provenance.errors import InputError

MAX_PANEL_BYTES = 1 << 20
SETTINGS = {"dtype", "device", "revision", "api_key_env"}  # per-model settings (LoadOptions fields or spec parts)
KEYS = {"spec", "lineage", "kind", "notes"} | SETTINGS


@dataclass(frozen=True)
class PanelEntry:
    spec: str
    lineage: str | None = None
    kind: str | None = None
    notes: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"spec": self.spec, "lineage": self.lineage, "kind": self.kind, "notes": self.notes}


@dataclass(frozen=True)
class ControlsPanel:
    controls: tuple[PanelEntry, ...]
    lineages: dict[str, str] = field(default_factory=dict)  # spec -> lineage, for every model the panel names
    settings: dict[str, dict[str, str]] = field(default_factory=dict)  # spec -> per-model settings (SETTINGS)

    @property
    def specs(self) -> list[str]:
        return [c.spec for c in self.controls]

    def renamed(self, names: dict[str, str]) -> "ControlsPanel":
        """This panel with specs renamed (a revision pinned, credentials stripped): controls, lineages and settings."""
        def n(spec: str) -> str:
            return names.get(spec, spec)

        return ControlsPanel(tuple(replace(c, spec=n(c.spec)) for c in self.controls),
                             {n(k): v for k, v in self.lineages.items()}, {n(k): v for k, v in self.settings.items()})

    def pinned(self) -> "ControlsPanel":
        """Controls with a `revision` setting named `spec@revision`, as every later reader must see them."""
        return self.renamed(dict(zip(self.specs, apply_settings(self.specs, self.settings)[0])))

    def settings_options(self) -> dict[str, dict[str, str]]:
        """LoadOptions overrides (dtype, device) per spec, from the per-model settings."""
        return {s: {k: v[k] for k in ("dtype", "device") if v.get(k)} for s, v in self.settings.items()
                if v.get("dtype") or v.get("device")}


def _parse(path: Path, text: str) -> Any:
    suffix = path.suffix.lower()
    try:
        if suffix == ".toml":
            try:
                import tomllib
            except ModuleNotFoundError:  # Python 3.10
                import tomli as tomllib  # type: ignore[no-redef]
            return tomllib.loads(text)
        if suffix in (".yaml", ".yml"):
            import yaml

            return yaml.safe_load(text)
        if suffix == ".json":
            return json.loads(text)
    except Exception as exc:  # noqa: BLE001 - any parser's error is the user's file: one line
        first = (str(exc).splitlines() or [""])[0][:200]
        raise InputError(f"{path}: not valid {suffix[1:].upper()} ({first})") from None
    raise InputError(f"{path}: a controls panel must be .toml, .yaml, .yml or .json")


def load_panel(path: Path | str) -> ControlsPanel:
    """Read and check a panel file; InputError (one line, naming the file and entry) on anything wrong."""
    path = Path(path)
    try:
        if not path.is_file():
            raise InputError(f"{path}: controls panel not found (or not a regular file)")
        if path.stat().st_size > MAX_PANEL_BYTES:
            raise InputError(f"{path}: controls panel larger than {MAX_PANEL_BYTES} bytes")
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot read controls panel ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: controls panel is not UTF-8 text") from None
    data = _parse(path, text)
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a table with a 'control' list")
    raw = data.get("control", data.get("controls"))
    if not isinstance(raw, list) or not raw:
        raise InputError(f"{path}: needs a non-empty 'control' list (one entry per control model)")
    entries = []
    for i, item in enumerate(raw, 1):
        if not isinstance(item, dict):
            raise InputError(f"{path}: control {i} is not a table")
        unknown = set(item) - KEYS
        if unknown:
            raise InputError(f"{path}: control {i} has unknown key(s) {', '.join(sorted(unknown))} "
                             f"(known: {', '.join(sorted(KEYS))})")
        for k in KEYS:
            if k in item and not isinstance(item[k], str):
                raise InputError(f"{path}: control {i}: '{k}' must be a string")
        if not item.get("spec", "").strip():
            raise InputError(f"{path}: control {i} has no 'spec'")
        entries.append(PanelEntry(item["spec"].strip(), (item.get("lineage") or "").strip() or None, item.get("kind"),
                                  item.get("notes")))
    settings = {e.spec: {k: item[k].strip() for k in SETTINGS if k in item}
                for e, item in zip(entries, raw) if any(k in item for k in SETTINGS)}
    models = data.get("models", {})
    if not isinstance(models, dict) or not all(isinstance(v, dict) for v in models.values()):
        raise InputError(f"{path}: 'models' must map model specs to tables of settings")
    for spec, table in models.items():
        unknown = set(table) - SETTINGS - {"lineage"}
        if unknown or not all(isinstance(v, str) for v in table.values()):
            raise InputError(f"{path}: models.{spec!r}: settings are strings among "
                             f"{', '.join(sorted(SETTINGS | {'lineage'}))}")
        settings.setdefault(spec.strip(), {}).update({k: v.strip() for k, v in table.items() if k != "lineage"})
    for spec, got in settings.items():
        check_settings(path, spec, got)
    extra = data.get("lineages", {})
    if not isinstance(extra, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in extra.items()):
        raise InputError(f"{path}: 'lineages' must map model specs to lineage names")
    lineages = {e.spec: e.lineage for e in entries if e.lineage}
    lineages.update({k.strip(): v["lineage"].strip() for k, v in models.items() if v.get("lineage", "").strip()})
    lineages.update({k.strip(): v.strip() for k, v in extra.items() if v.strip()})
    specs = [e.spec for e in entries]
    dup = sorted({s for s in specs if specs.count(s) > 1})
    if dup:
        raise InputError(f"{path}: control(s) listed twice: {', '.join(dup)}")
    return ControlsPanel(tuple(entries), lineages, {k: v for k, v in settings.items() if v})


def check_settings(path: Path, spec: str, got: dict[str, str]) -> None:
    """Per-model settings checked when the file is read (one line naming the file and the model)."""
    from provenance.models import DTYPES, check_device

    if "dtype" in got and got["dtype"] not in DTYPES:
        raise InputError(f"{path}: {spec}: dtype {got['dtype']!r} is not one of {', '.join(DTYPES)}")
    if "device" in got:
        try:
            check_device(got["device"])
        except InputError as exc:
            raise InputError(f"{path}: {spec}: {exc}") from None
    if "api_key_env" in got and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,127}", got["api_key_env"]):
        raise InputError(f"{path}: {spec}: api_key_env must name an environment variable")


def apply_settings(specs: list[str], settings: dict[str, dict[str, str]]) -> tuple[list[str], dict[str, dict[str, str]],
                                                                                 tuple[str, ...]]:
    """(specs with a `revision` setting appended as `@rev`, LoadOptions overrides per resulting spec, SPEC=VAR key
    pairs for --api-key-env) from a panel's per-model settings."""
    out, options, keys = [], {}, []
    for s in specs:
        got = settings.get(s, {})
        spec = f"{s}@{got['revision']}" if got.get("revision") and "@" not in s else s
        out.append(spec)
        if got.get("dtype") or got.get("device"):
            options[spec] = {k: got[k] for k in ("dtype", "device") if got.get(k)}
        if got.get("api_key_env"):
            keys.append(f"{s}={got['api_key_env']}")
    return out, options, tuple(keys)
