"""One progress bar for long work: tqdm on stderr, off when asked or when PROVENANCE_NO_PROGRESS is set."""

from __future__ import annotations

import os
import sys
from typing import Any


def bar(total: int, desc: str, enabled: bool = True, unit: str = "it", leave: bool = False,
        position: int | None = None) -> Any:
    """A tqdm bar (a context manager); disabled bars cost nothing and print nothing."""
    from tqdm import tqdm

    off = not enabled or bool(os.environ.get("PROVENANCE_NO_PROGRESS"))
    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, leave=leave, position=position,
                dynamic_ncols=True, disable=off)
