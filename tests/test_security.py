"""A run in a folder of someone else's files: no code of theirs runs unless asked, no secret of
a data URL is shown, no file of the output folder is a way to overwrite another one."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from sdt_core import SdtError
from sdt_core.output.folder_lock import HOLDER, FolderLock
from sdt_core.testing import SECRET

from .conftest import run_sdt

SMALL_ARGS = ["--workers", "1", "--threads", "1", "--memory", "1", "--set", "dashboard_address=127.0.0.1:0"]
INVENTORY = "sdt_core.analysis:data_inventory"
#: Modules sdt, its dependencies or Python import (stdlib, required, optional, sdt's own plug).
PLANTED = ["pluggy", "json", "pandas", "distributed", "click", "cloudpickle", "lz4", "sdt_local", "multiprocessing"]
PLANT = "open(__file__ + '.ran', 'w').close()\n"


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """CSV files of two systems beside modules named like what sdt imports; each leaves a mark if imported."""
    folder = tmp_path_factory.mktemp("hostile")
    assert run_sdt("sample-data", str(folder), "--systems", "2", "--days", "2").returncode == 0
    for name in PLANTED:
        (folder / f"{name}.py").write_text(PLANT)
    (folder / "mine.py").write_text("import json\n\ndef count(frame):\n    return {'n': len(json.dumps([1]))}\n")
    return folder


def ran(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.glob("*.ran"))


@pytest.mark.parametrize(
    "analysis", [INVENTORY, "mine:count", "json:count"], ids=["installed", "named-module-there", "shadowing"]
)
def test_no_module_of_the_data_folder_runs_unless_named(hostile, analysis):
    result = run_sdt("run", ".", "--analysis", analysis, "--out", "out", "--no-report", *SMALL_ARGS, cwd=hostile)
    try:
        assert ran(hostile) == []
        if analysis.startswith("json"):
            assert result.returncode == 2
            assert result.stderr == (
                "sdt: error: json.py in the current directory has the name of an installed module (json), "
                "which Python imports instead; rename it\n"
            )
        else:
            assert result.returncode == 0, result.stderr
            assert "2 keys: 2 ok, 0 failed" in result.stderr
    finally:
        for path in hostile.glob("*.ran"):
            path.unlink()
        shutil.rmtree(hostile / "out", ignore_errors=True)


def test_a_data_url_never_shows_its_password(tmp_path):
    result = run_sdt("run", f"s3://AKIDEXAMPLE:{SECRET}@no-such-bucket/prefix", "--dry-run", cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert SECRET not in result.stderr + result.stdout
    assert "s3://no-such-bucket/prefix" in result.stderr  # the URL is named, its credentials are not


def test_a_planted_lock_link_is_refused(tmp_path):
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / ".sdt-lock").symlink_to(target)
    with pytest.raises(SdtError, match="is a symbolic link, not sdt's lock; remove it or choose another --out"):
        FolderLock(tmp_path / "out").acquire()
    assert target.read_text() == "keep me"


def test_a_planted_holder_link_overwrites_nothing(tmp_path):
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    out = tmp_path / "out"
    out.mkdir()
    (out / HOLDER).symlink_to(target)
    lock = FolderLock(out)
    lock.acquire()
    try:
        assert target.read_text() == "keep me"
        assert json.loads((out / HOLDER).read_text())["pid"] == os.getpid()
        assert not (out / HOLDER).is_symlink()
    finally:
        lock.release()
