"""The documentation stays true: the generated reference is current and every example runs.

Examples in ```pycon blocks are doctests (their printed output is checked); ```python blocks
are run in order, each file in its own namespace.
"""

from __future__ import annotations

import doctest
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
FENCE = re.compile(r"^```(\w*)\s*$")


def test_reference_is_up_to_date():
    # a fresh interpreter: ops that tests define on the fly must not leak into the reference
    result = subprocess.run([sys.executable, str(DOCS / "gen_reference.py"), "--check"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_reference_check_detects_a_stale_file(tmp_path):
    spec = importlib.util.spec_from_file_location("gen_reference", DOCS / "gen_reference.py")
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    generator.OUTPUT = tmp_path / "reference.md"
    generator.OUTPUT.write_text(generator.generate().replace("| `add` |", "| `plus` |"))
    assert generator.main(["--check"]) == 1
    assert generator.main([]) == 0
    assert generator.main(["--check"]) == 0


def test_reference_lists_every_op_and_builder():
    import graphc.tensor as gt
    from graphc.ir import OPS

    text = (DOCS / "reference.md").read_text()
    for name in OPS:
        assert f"| `{name}` |" in text
    for name in ("add", "sum", "dot", "reshape", "zeros", "where"):
        assert callable(getattr(gt, name)) and f"| `gt.{name}` |" in text


def code_blocks(path: Path, language: str) -> str:
    """The file's text with everything outside ```language blocks blanked (line numbers kept)."""
    kept, inside = [], None
    for line in path.read_text().splitlines():
        match = FENCE.match(line)
        if match:
            inside = match.group(1) if inside is None else None
            kept.append("")
        else:
            kept.append(line if inside == language else "")
    return "\n".join(kept) + "\n"


DOC_FILES = sorted(p.name for p in DOCS.glob("*.md"))


@pytest.mark.parametrize("name", DOC_FILES)
def test_doc_examples_run(name):
    path = DOCS / name
    namespace = {"__name__": f"docs.{path.stem}"}
    python = code_blocks(path, "python")
    if python.strip():
        exec(compile(python, str(path), "exec"), namespace)
    pycon = code_blocks(path, "pycon")
    if not pycon.strip():
        return
    test = doctest.DocTestParser().get_doctest(pycon, namespace, name, str(path), 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.attempted > 0
    assert result.failed == 0, f"{result.failed} example(s) of docs/{name} failed (output above)"


def test_docs_cover_the_required_pages():
    assert {"index.md", "tutorial.md", "reference.md", "graphs.md"} <= set(DOC_FILES)
