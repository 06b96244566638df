"""The docs cannot drift: every code block of the walk-throughs runs, the reference is generated.

A walk-through runs in an empty folder, with a fresh environment that has only sdt-core
(and what the page's `ENVIRONMENTS` entry adds) on PATH first, block after block:

- a block with `title="PATH"` (toml, python, ...) is a file of the walk-through: it is written to PATH;
- a `console` block runs each `$ COMMAND` with bash; the lines after it, up to the next
  `$ `, are its expected output (stdout and stderr): a line `...` stands for any lines,
  `...` within a line for any text. A command whose output shows `sdt: error:` must exit
  2, every other one 0;
- a `python` block without a title is run as a script.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from uv import find_uv_bin

from sdt_core.testing import live_processes

from .conftest import REPO, fresh_env

DOCS = REPO / "docs"
#: What each walk-through's environment has besides sdt-core. It has no pip, as the README's uv set-up:
#: the pages install plugs with `uv pip install -e`.
ENVIRONMENTS: dict[str, list[str | Path]] = {
    "cluster-plug.md": ["pytest>=8.0"],
    "data-plug.md": ["pytest>=8.0", REPO / "plugins" / "sdt-local"],
}
FENCE = re.compile(r"^```(?P<lang>\w*)(?P<info>[^\n]*)\n(?P<body>.*?)^```[ \t]*$", re.M | re.S)


@dataclass(frozen=True)
class Block:
    lang: str
    title: str | None
    body: str
    line: int


def code_blocks(text: str) -> list[Block]:
    """The fenced code blocks of a Markdown text, in order."""
    found = []
    for match in FENCE.finditer(text):
        title = re.search(r'title="([^"]+)"', match["info"])
        line = text.count("\n", 0, match.start()) + 1
        found.append(Block(match["lang"], title[1] if title else None, match["body"], line))
    return found


def expected_pattern(expected: str) -> re.Pattern[str]:
    """`expected` output as a pattern: a line `...` is any lines, `...` in a line any text."""
    parts = []
    for line in expected.splitlines():
        if line == "...":
            parts.append(r"(?:[^\n]*\n)*?")
        else:
            parts.append("[^\n]*?".join(map(re.escape, line.split("..."))) + r"\n")
    return re.compile("".join(parts))


def commands(body: str) -> list[tuple[str, str]]:
    """The `$ COMMAND` lines of a console block, each with the output expected after it."""
    found: list[tuple[str, list[str]]] = []
    for line in body.splitlines():
        if line.startswith("$ "):
            found.append((line[2:], []))
        else:
            assert found, f"output before any command: {line!r}"
            found[-1][1].append(line)
    return [(command, "\n".join(lines) + "\n" if lines else "") for command, lines in found]


def run_walkthrough(page: Path, folder: Path, python: Path) -> None:
    env = os.environ | {
        "PATH": f"{python.parent}{os.pathsep}{Path(find_uv_bin()).parent}{os.pathsep}{os.environ['PATH']}",
        "VIRTUAL_ENV": str(python.parent.parent),
        "PYTHONUNBUFFERED": "1",  # stdout and stderr interleaved as on a terminal
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "COLUMNS": "80",
    }
    env.pop("PYTHONPATH", None)
    for block in code_blocks(page.read_text()):
        where = f"{page.name}:{block.line}"
        if block.title:
            path = folder / block.title
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(block.body)
        elif block.lang == "console":
            for command, expected in commands(block.body):
                result = subprocess.run(
                    ["bash", "-c", command],
                    cwd=folder,
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                    timeout=600,
                )
                status = 2 if "sdt: error:" in expected else 0
                assert result.returncode == status, f"{where}: `{command}` exited {result.returncode}:\n{result.stdout}"
                output = "\n".join(line.rstrip() for line in result.stdout.splitlines()) + "\n"
                assert expected_pattern(expected).fullmatch(output if expected else ""), (
                    f"{where}: `{command}` printed\n{result.stdout}\ninstead of\n{expected}"
                )
        elif block.lang == "python":
            script = folder / f"block_{block.line}.py"
            script.write_text(block.body)
            result = subprocess.run([python, script.name], cwd=folder, env=env, capture_output=True, text=True)
            assert result.returncode == 0, f"{where}: the script failed:\n{result.stderr}"
        else:
            pytest.fail(f"{where}: a {block.lang or 'plain'} block without title= is neither a file nor run")


@pytest.mark.parametrize("page", sorted(ENVIRONMENTS))
def test_every_block_of_the_walkthrough_runs(page, tmp_path):
    python = fresh_env(tmp_path / "venv", *ENVIRONMENTS[page], pip=False)  # the README's uv set-up: no pip
    folder = tmp_path / "walkthrough"
    folder.mkdir()
    before = set(live_processes())
    try:
        run_walkthrough(DOCS / page, folder, python)
    finally:  # a page's background processes (a scheduler started by hand) end even when a block failed
        stop_processes(set(live_processes()) - before)


def stop_processes(pids: set[int]) -> None:
    import psutil

    procs = [p for p in map(_process, pids) if p is not None]
    for proc in procs:
        proc.terminate()
    _, alive = psutil.wait_procs(procs, timeout=30)
    for proc in alive:
        proc.kill()


def _process(pid: int):
    import psutil

    try:
        return psutil.Process(pid)
    except psutil.NoSuchProcess:
        return None


def test_the_walkthroughs_cover_the_contract():
    """Each page walks through what the contract names; each is linked from the README."""
    cluster, data = (DOCS / "cluster-plug.md").read_text(), (DOCS / "data-plug.md").read_text()
    for word in ("secret=True", "check(", "given", "passthrough", "reserved", "backend_kwargs", "SettingsError",
                 "ClusterStartError", "preflight", "plan_cluster", "sdt_core.testing", "uv build", "## Planning",
                 "## Started or attached clusters", "a,b,c", "k=v"):  # fmt: skip
        assert word in cluster, word
    for word in ("from_location", "power_column", "time_zone", "keys(", "get_data(", "weight(", "load_key",
                 "sdt info feather", "head(", "probe(", "local_path", "--data ", "sdt_core.dataplugs",
                 "uv build"):  # fmt: skip
        assert word in data, word
    readme = (REPO / "README.md").read_text()
    for page in ("docs/cluster-plug.md", "docs/data-plug.md", "docs/reference.md"):
        assert f"]({page})" in readme, page


def test_every_walkthrough_is_run():
    pages = {p.name for p in DOCS.glob("*.md")} - {"reference.md", "README.md"}
    assert pages == set(ENVIRONMENTS)


def test_the_reference_page_is_generated_from_the_docstrings():
    result = subprocess.run([sys.executable, DOCS / "reference.py", "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_the_reference_lists_every_public_name():
    import sdt_core
    import sdt_core.testing

    page = (DOCS / "reference.md").read_text()
    headings = set(re.findall(r"^### (?:class )?`(?:@)?(\w+)", page, re.M))
    assert set(sdt_core.__all__) <= headings, set(sdt_core.__all__) - headings
    assert set(sdt_core.testing.__all__) <= headings, set(sdt_core.testing.__all__) - headings
    for member in ("check(", "backend_kwargs(", "field `given", "`passthrough", "`reserved", "from_location("):
        assert member in page, member


@pytest.mark.parametrize(
    ("expected", "output", "matches"),
    [
        ("a\nb\n", "a\nb\n", True),
        ("a\n...\nc\n", "a\nx\ny\nc\n", True),
        ("a\n...\nc\n", "a\nc\n", True),
        ("took ... s\n", "took 3.2 s\n", True),
        ("a\n", "a\nb\n", False),
        ("took ... s\n", "took 3.2 min\n", False),
    ],
)
def test_expected_output_patterns(expected, output, matches):
    assert bool(expected_pattern(expected).fullmatch(output)) is matches


def test_commands_are_split_from_their_output():
    assert commands("$ a\nout\n$ b\n") == [("a", "out\n"), ("b", "")]
