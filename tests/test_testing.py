"""The test helpers guard the suite itself: a leaked secret fails a test; cloud tests are opt-in."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from sdt_core.testing import SECRET


def pytest_in(tmp_path, test_source: str, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "conftest.py").write_text(
        "from sdt_core.testing import pytest_addoption, pytest_collection_modifyitems, pytest_configure, "
        "pytest_runtest_makereport, pytest_unconfigure  # noqa: F401\n"
    )
    (tmp_path / "test_it.py").write_text(textwrap.dedent(test_source))
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "--rootdir", str(tmp_path), *args],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_a_test_whose_output_shows_the_secret_fails(tmp_path):
    result = pytest_in(
        tmp_path,
        f"""
        import logging
        def test_prints():
            print("token is {SECRET}")
        def test_logs():
            logging.getLogger("x").warning("token is {SECRET}")
        def test_quiet():
            assert "{SECRET}"
        """,
    )
    assert result.returncode == 1
    assert "2 failed, 1 passed" in result.stdout
    assert "the test secret appeared in: Captured stdout call" in result.stdout
    assert "the test secret appeared in: Captured log call" in result.stdout


def test_cloud_tests_run_only_with_run_cloud_and_name_the_variables_to_set(tmp_path, monkeypatch):
    monkeypatch.delenv("SDT_TEST_NOT_SET", raising=False)
    source = """
        import pytest
        @pytest.mark.cloud("SDT_TEST_NOT_SET", "PATH")
        def test_cloud():
            pass
        """
    result = pytest_in(tmp_path, source)
    assert "SKIPPED" in result.stdout and "real cloud: give --run-cloud and set SDT_TEST_NOT_SET, PATH" in result.stdout
    result = pytest_in(tmp_path, source, "--run-cloud")
    assert "real cloud: set SDT_TEST_NOT_SET" in result.stdout and "PATH" not in result.stdout.split("set ")[-1]
