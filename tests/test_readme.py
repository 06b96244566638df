"""The README's Python examples run as written: as scripts, with worker processes."""

from __future__ import annotations

import subprocess
import sys

import pytest

from .conftest import REPO, SDT
from .test_docs import code_blocks

README = (REPO / "README.md").read_text()
EXAMPLES = [b for b in code_blocks(README) if b.lang == "python" and not b.title]


def test_the_readme_plug_is_the_example_plug_file():
    """The inline plug is examples/sdt-inprocess's module itself, not a variant of it."""
    (plug,) = [b for b in code_blocks(README) if b.lang == "python" and "def make_cluster" in b.body]
    assert plug.title == "examples/sdt-inprocess/sdt_inprocess/__init__.py"
    assert plug.body == (REPO / plug.title).read_text()
    for block in code_blocks(README):
        if block.title:
            assert block.body in (REPO / block.title).read_text(), block.title


@pytest.mark.parametrize("example", EXAMPLES, ids=[f"line-{b.line}" for b in EXAMPLES])
def test_each_python_example_runs_as_a_script_with_process_workers(example, tmp_path):
    if '"data/"' in example.body:
        made = subprocess.run([SDT, "sample-data", "data", "--systems", "2", "--days", "30"], cwd=tmp_path, check=True)
        assert made.returncode == 0
    script = tmp_path / "example.py"  # a file, not -c: spawned worker processes import it again
    script.write_text(example.body)
    result = subprocess.run([sys.executable, script], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip(), "an example shows what it did"
