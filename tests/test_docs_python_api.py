"""docs/python-api.md runs: its cells in order, with seeded fake models in place of the packaged ones (plumbing)."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "python-api.md"
# The doc's models -> fakes of the same roles (a student of the reference, and a control lineage).
SWAP = {'"qwen2.5-coder-0.5b-instruct"': '"fake:s1?teacher=t1&q=0.5"', '"smollm2-135m-instruct"': '"fake:t1"',
        '["gemma-3-270m"]': '["fake:c1", "fake:c2", "fake:c3", "fake:c4"]'}


def test_every_cell_of_the_python_api_page_runs() -> None:
    cells = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert len(cells) == 4
    code = "\n".join(cells)
    for a, b in SWAP.items():
        assert a in code
        code = code.replace(a, b)
    printed = io.StringIO()
    scope: dict[str, object] = {}
    with contextlib.redirect_stdout(printed):
        exec(compile(code, str(DOC), "exec"), scope)  # noqa: S102 - our own documentation
    text = printed.getvalue()
    assert scope["ref"]["verdict"] in ("distilled", "derived", "inconclusive", "no_evidence")  # type: ignore[index]
    assert "output_agreement" in text and "weight_alignment" in text
    assert text.rstrip().endswith("None")  # a fake model has no device or dtype (a local model prints both)
    assert len(scope["df"]) == len(scope["ref"]["tests"])  # type: ignore[arg-type, index]
