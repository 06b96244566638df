"""Worker image and version match: `sdt image`, `sdt doctor`, and the check when a client connects."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

import pytest
from distributed import Client, LocalCluster
from uv import find_uv_bin

from sdt_core.errors import VersionMismatchError
from sdt_core.plugs.versions import PACKAGES, check_cluster, local_versions, parse_pip_list

OLD = {"dask": "2024.1.0", "distributed": "2024.1.0", "numpy": "1.26.4"}


def uv(*args: object) -> str:
    result = subprocess.run([find_uv_bin(), *map(str, args)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def freeze() -> str:
    """This environment's real `pip freeze` output (uv's, since uv environments have no pip)."""
    return uv("pip", "freeze", "--python", sys.executable)


def image_list(freeze: str, changes: dict[str, str]) -> str:
    """`freeze` as an image would report it if it had other versions of `changes`.

    This checkout's sdt-core and sdt-local are editable installs here, which freeze lists
    without a version; an image installs them from wheels, which it lists as name==version.
    """
    lines = []
    for line in freeze.splitlines():
        name = line.split("==")[0].lower()
        lines.append(f"{name}=={changes[name]}" if name in changes else line)
    lines += [f"{name}=={version(name)}" for name in ("sdt-core", "sdt-local")]
    return "\n".join(lines) + f"\nPython {sys.version.split()[0]}\n"


def test_doctor_lists_the_dask_distributed_numpy_mismatches_of_an_image(sdt, freeze, tmp_path):
    packages = tmp_path / "image-packages.txt"
    packages.write_text(image_list(freeze, OLD))
    result = sdt("doctor", "--image-packages", str(packages), "--plug", "local")
    assert result.returncode == 1, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()[1:-1]]
    assert rows == [[name, version(name), OLD[name]] for name in ("dask", "distributed", "numpy")]
    assert result.stdout.splitlines()[-1] == (
        "3 mismatches; build the worker image with `sdt image DIR` (`sdt doctor` lists every difference)"
    )


def test_doctor_reads_pip_list_tables_and_json_and_finds_no_mismatch_in_this_environment(sdt, freeze, tmp_path):
    pinned = {name: version for name, version in local_versions().items() if version}
    table = "Package Version\n------- -------\n" + "".join(f"{n} {v}\n" for n, v in pinned.items())
    as_json = json.dumps([{"name": n, "version": v} for n, v in pinned.items()])
    for text in (table, as_json, image_list(freeze, {})):  # pip list, pip list --format=json, pip freeze
        assert {k: v for k, v in parse_pip_list(text).items() if k in pinned} == pinned
    same = tmp_path / "same.txt"
    same.write_text(image_list(freeze, {}))
    result = sdt("doctor", "--image-packages", str(same), "--plug", "local")
    assert result.returncode == 0 and result.stdout.startswith("No mismatch"), result.stdout + result.stderr


def test_doctor_reports_a_package_missing_from_the_image(sdt, freeze, tmp_path):
    packages = tmp_path / "image-packages.txt"
    packages.write_text(
        "\n".join(line for line in image_list(freeze, {}).splitlines() if "solar-data-tools" not in line)
    )
    result = sdt("doctor", "--image-packages", str(packages), "--plug", "local")
    assert result.returncode == 1
    assert result.stdout.splitlines()[1].split() == [
        "solar-data-tools",
        version("solar-data-tools"),
        "not",
        "installed",
    ]


def test_image_pins_every_package_that_must_match_to_this_environment(sdt, tmp_path):
    result = sdt("image", str(tmp_path / "image"), "--plug", "fargate")
    assert result.returncode == 0, result.stderr
    requirements = (tmp_path / "image" / "requirements.txt").read_text().splitlines()
    pins = dict(line.split("==") for line in requirements if not line.startswith("#"))
    assert pins == {name: version(name) for name in (*PACKAGES, "sdt-fargate")}
    dockerfile = (tmp_path / "image" / "Dockerfile").read_text()
    assert "FROM python:{}.{}-slim".format(*sys.version_info[:2]) in dockerfile
    assert "-r /tmp/sdt-image/requirements.txt" in dockerfile
    assert "Installed from a path, not an index: " in result.stdout  # sdt-core from this checkout


@pytest.fixture(scope="module")
def other_worker_env(tmp_path_factory) -> Path:
    """A real environment with this distributed but another toolz, as a stale worker image has."""
    venv = tmp_path_factory.mktemp("stale-worker") / "venv"
    uv("venv", "-q", "-p", sys.executable, venv)
    uv("pip", "install", "-q", "-p", venv / "bin" / "python", f"distributed=={version('distributed')}", "toolz==0.12.1")
    return venv


def test_a_worker_with_other_versions_is_reported_as_one_message(other_worker_env):
    with (
        LocalCluster(
            n_workers=0, processes=False, protocol="tcp", host="127.0.0.1", dashboard_address="127.0.0.1:0"
        ) as cluster,
        Client(cluster) as client,
    ):
        worker = subprocess.Popen(
            [other_worker_env / "bin" / "dask", "worker", cluster.scheduler_address, "--nthreads", "1",
             "--memory-limit", "1GiB", "--no-dashboard", "--no-nanny"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            client.wait_for_workers(1, timeout=120)
            # This environment has only distributed and its dependencies: toolz is older and
            # numpy is missing; the scheduler runs here, so it matches.
            expected = f"toolz {version('toolz')} here, 0.12.1 on 1 of 1 workers"
            message = check_cluster(client, on_mismatch="warn")
            assert message.startswith("the cluster runs other versions than this client: ")
            assert message.endswith(
                "; build the worker image with `sdt image DIR` (`sdt doctor` lists every difference)"
            )
            assert expected in message and f"numpy {version('numpy')} here, missing on 1 of 1 workers" in message
            assert "scheduler" not in message and "\n" not in message
            with pytest.raises(VersionMismatchError, match=expected):
                check_cluster(client)  # the default: an error
            assert check_cluster(client, on_mismatch="ignore") == ""
        finally:
            worker.terminate()
            worker.wait(timeout=60)
            deadline = time.monotonic() + 30
            while client.scheduler_info()["workers"] and time.monotonic() < deadline:
                time.sleep(0.1)
