from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Commands the tests start may keep the bytecode they compile, as on a user's machine: where
# the environment forbids it, each `sdt` in a fresh venv would compile SDT's stack again.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
# and install into the environments the tests make, never into the suite's own: nox points uv at
# its session's environment (UV_PYTHON wins over an activated VIRTUAL_ENV in `uv pip install`).
for _name in ("UV_PYTHON", "UV_PROJECT_ENVIRONMENT"):
    os.environ.pop(_name, None)
SDT = Path(sys.executable).with_name("sdt")


def run_sdt(
    *args: str, timeout: float = 120, env_extra: dict[str, str] | None = None, **kwargs
) -> subprocess.CompletedProcess[str]:
    """Run the installed `sdt` console script, as a user would (`env_extra`: more environment)."""
    env = os.environ | (env_extra or {})
    return subprocess.run([str(SDT), *args], capture_output=True, text=True, timeout=timeout, env=env, **kwargs)


@pytest.fixture(autouse=True)
def root_logging_restored():
    """`sdt` run in this process (`main()`) gives the root logger its stderr handler, bound to the
    test's captured stream: each test ends with the root logger as it found it."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture(autouse=True)
def distributed_logging_unchanged():
    """Each test leaves the levels of the loggers a run's close quiets as it found them: a level left
    at ERROR hides the next runs' scheduler records and run.log warnings in this process."""
    import distributed  # noqa: F401  its first import sets these levels (its logging config): not the test's doing

    from sdt_core.job.signals import SHUTDOWN_LOGGERS

    levels = {name: logging.getLogger(name).level for name in SHUTDOWN_LOGGERS}
    yield
    left = {name: logging.getLogger(name).level for name in SHUTDOWN_LOGGERS}
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
    assert left == levels, "the test left distributed's logger levels changed"


@pytest.fixture
def sdt():
    return run_sdt


def checked(*args, **kwargs) -> subprocess.CompletedProcess[str]:
    """Run a command (arguments may be paths); fail with its stderr unless it exits 0."""
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=600, **kwargs)
    assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
    return result


def fresh_env(folder: Path, *packages: str | Path, pip: bool = True) -> Path:
    """A new virtual environment in `folder` with sdt-core from this checkout and `packages`
    (uv, for speed; pip is seeded for the tests to install as users do, unless `pip` is False:
    a uv environment as the README's set-up makes); returns its python."""
    from uv import find_uv_bin

    checked(find_uv_bin(), "venv", *(["--seed"] if pip else []), "-q", "-p", sys.executable, folder)
    python = folder / "bin" / "python"
    checked(find_uv_bin(), "pip", "install", "-q", "--no-sources", "-p", python, REPO, *packages)
    return python
