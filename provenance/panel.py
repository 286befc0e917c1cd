"""A controls panel file: the control models of an audit with their lineage, kind and notes (TOML, YAML or JSON).

Example (TOML)::

    [[control]]
    spec = "qwen2.5-coder-0.5b-instruct"
    lineage = "qwen"            # models of one lineage count as one unit of the null
    kind = "0.5B, instruct"     # free text: size, training, data where known
    notes = "Alibaba Cloud; public weights"

    [lineages]                  # lineage of any other model of the audit (suspect, references)
    "./ours" = "ours"
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provenance.errors import InputError

MAX_PANEL_BYTES = 1 << 20
KEYS = {"spec", "lineage", "kind", "notes"}


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

    @property
    def specs(self) -> list[str]:
        return [c.spec for c in self.controls]


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
    extra = data.get("lineages", {})
    if not isinstance(extra, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in extra.items()):
        raise InputError(f"{path}: 'lineages' must map model specs to lineage names")
    lineages = {e.spec: e.lineage for e in entries if e.lineage}
    lineages.update({k.strip(): v.strip() for k, v in extra.items() if v.strip()})
    specs = [e.spec for e in entries]
    dup = sorted({s for s in specs if specs.count(s) > 1})
    if dup:
        raise InputError(f"{path}: control(s) listed twice: {', '.join(dup)}")
    return ControlsPanel(tuple(entries), lineages)
