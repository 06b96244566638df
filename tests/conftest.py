from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SDT = Path(sys.executable).with_name("sdt")


def run_sdt(
    *args: str, timeout: float = 120, env_extra: dict[str, str] | None = None, **kwargs
) -> subprocess.CompletedProcess[str]:
    """Run the installed `sdt` console script, as a user would (`env_extra`: more environment)."""
    env = os.environ | (env_extra or {})
    return subprocess.run([str(SDT), *args], capture_output=True, text=True, timeout=timeout, env=env, **kwargs)


@pytest.fixture
def sdt():
    return run_sdt
