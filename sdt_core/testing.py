"""Test helpers for sdt-core and plug authors: prove a test leaves no process or port behind.

    from sdt_core.testing import no_leaks

    def test_my_plug():
        with no_leaks():
            with get_plug("myplug", workers=1) as client:
                ...

A plug's test suite gets the fixtures and hooks below for every test by importing them in
its root conftest.py: `leak_check`, `dask_scratch`, `moto_server`, `aws`, and the `pytest_*`
hooks (the `SECRET` check, the `cloud` marker, a temporary folder of the session's own).
"""

from __future__ import annotations

import inspect
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil
import pytest

__all__ = [
    "AZURITE_KEY",
    "MARKER",
    "SECRET",
    "RecordingBackend",
    "aws",
    "azure_blob",
    "azurite",
    "dask_scratch",
    "free_port",
    "leak_check",
    "listening_ports",
    "live_processes",
    "load_key",
    "moto_server",
    "no_leaks",
    "pytest_addoption",
    "pytest_collection_modifyitems",
    "pytest_configure",
    "pytest_runtest_makereport",
    "pytest_unconfigure",
]

# multiprocessing's resource tracker is one per interpreter and ends with it.
_INTERPRETER_HELPERS = ("multiprocessing.resource_tracker", "multiprocessing.forkserver")
#: Set in this process's environment, so that every process started from it, even one
#: orphaned when its parent exited, can be found again.
MARKER = "SDT_CORE_TESTING_RUN"
os.environ.setdefault(MARKER, uuid.uuid4().hex)


def live_processes() -> dict[int, str]:
    """Live processes started from this one (descendants or marked), pid -> command line."""
    me = psutil.Process()
    candidates = {p.pid: p for p in me.children(recursive=True)}
    for proc in psutil.process_iter():
        try:
            if proc.pid != me.pid and proc.environ().get(MARKER) == os.environ[MARKER]:
                candidates[proc.pid] = proc
        except (psutil.Error, OSError):
            continue
    found = {}
    for pid, proc in candidates.items():
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                continue
            cmdline = " ".join(proc.cmdline())
        except psutil.Error:
            continue
        if not _interpreter_helper(proc, cmdline):
            found[pid] = cmdline
    return found


def _interpreter_helper(proc: psutil.Process, cmdline: str) -> bool:
    """One of the interpreter's own helpers; not a process forked from one (a forkserver's workers)."""
    if not any(helper in cmdline for helper in _INTERPRETER_HELPERS):
        return False
    try:
        parent = proc.parent()
        return parent is None or " ".join(parent.cmdline()) != cmdline
    except psutil.Error:
        return True


def listening_ports() -> set[int]:
    """TCP ports this process listens on."""
    return {c.laddr.port for c in psutil.Process().net_connections("tcp") if c.status == psutil.CONN_LISTEN}


@contextmanager
def no_leaks(timeout: float = 15.0) -> Iterator[None]:
    """Fail if the block leaves child processes or listening ports once `timeout` has passed."""
    children, ports = set(live_processes()), listening_ports()
    yield
    deadline = time.monotonic() + timeout
    while True:
        new_children = {p: c for p, c in live_processes().items() if p not in children}
        new_ports = listening_ports() - ports
        if not new_children and not new_ports:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"left behind: processes {new_children}, listening ports {new_ports}")
        time.sleep(0.1)


# Fixtures and hooks, for the conftest.py at the root of a test suite (this repository's
# imports them all): `leak_check` fails every test that leaks a process or port;
# `pytest_configure`/`pytest_unconfigure` and `dask_scratch` keep all temporary files (Dask's
# scratch space included) in a folder of the session's own, removed at the end.


@pytest.fixture(autouse=True)
def leak_check() -> Iterator[None]:
    """Every test fails if it leaves a process or a listening port behind (`no_leaks`)."""
    with no_leaks():
        yield


@pytest.fixture(autouse=True, scope="session")
def dask_scratch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Dask's scratch space, here and in every process started from here, in a removed folder."""
    import dask.config

    path = tmp_path_factory.mktemp("dask-scratch")
    with pytest.MonkeyPatch.context() as env, dask.config.set({"temporary-directory": str(path)}):
        env.setenv("DASK_TEMPORARY_DIRECTORY", str(path))
        yield path
    shutil.rmtree(path, ignore_errors=True)


class RecordingBackend:
    """Stands in for a backend cluster class: records each call's keyword arguments.

    For testing a plug up to its backend boundary, where the backend's API has no local
    stand-in. `spec` is the replaced class, whose signature it keeps (so pass-through settings
    are still checked against it); `returns` makes each call return something, e.g. a real
    in-process cluster.
    """

    def __init__(self, spec: Callable[..., Any], returns: Callable[[], Any] | None = None) -> None:
        self.__signature__ = inspect.signature(spec)
        self.calls: list[dict[str, Any]] = []
        self._returns = returns

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        assert not args, f"a backend should be called with keywords only, got {args}"
        self.calls.append(kwargs)
        return self._returns() if self._returns else None


def load_key(data: Any, key: tuple[Any, ...]) -> Any:
    """The frame an analysis gets for `key` of data plug `data`, as `sdt run` loads it on a worker.

    The plug's table with its declared frame options applied (power column, timestamps,
    time zone), checked to hold at least a day; a ValueError says what is wrong.
    """
    from sdt_core.dataplugs.frames import check_span, load_frame

    frame = load_frame(data, key)
    check_span(frame)
    return frame


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """A real AWS API on loopback: moto in server mode, in its own process; yields its URL."""
    port = free_port()
    env = os.environ | {"MOTO_IAM_LOAD_MANAGED_POLICIES": "true"}
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/moto-api/", timeout=1).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto server did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture
def aws(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """This process and every process it starts talk to the moto server, with dummy
    credentials; the server's state is reset after the test."""
    for name, value in {
        "AWS_ENDPOINT_URL": moto_server,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    yield moto_server
    urllib.request.urlopen(urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST")).close()


#: The account key of Azurite's development account `devstoreaccount1`, as Azurite documents it (not a secret).
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
AZURITE_ACCOUNT = "devstoreaccount1"
#: In memory (no files left), quiet, any API version, and no telemetry (it would call Azure).
AZURITE_OPTIONS = ("--inMemoryPersistence", "--silent", "--skipApiVersionCheck", "--disableTelemetry")


def _wait_for_port(port: int, process: subprocess.Popen[Any], what: str, timeout: float = 60) -> None:
    """Wait until `process` listens on 127.0.0.1:`port`; RuntimeError if it ends or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start") from None
            time.sleep(0.1)


@pytest.fixture(scope="session")
def azurite() -> Iterator[str]:
    """Azure Blob Storage on loopback: Azurite's blob service (`npm install -g azurite`), in memory,
    without telemetry; yields the connection string of its development account."""
    command = shutil.which("azurite-blob")
    if command is None:
        raise RuntimeError("azurite-blob is not installed: npm install -g azurite (the nox tests session does)")
    port = free_port()
    server = subprocess.Popen(
        [command, "--blobHost", "127.0.0.1", "--blobPort", str(port), *AZURITE_OPTIONS],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_port(port, server, "azurite-blob")
        yield (
            f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
            f"BlobEndpoint=http://127.0.0.1:{port}/{AZURITE_ACCOUNT};"
        )
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture
def azure_blob(azurite: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """This process and every process it starts reach Azurite through AZURE_STORAGE_CONNECTION_STRING;
    every container is deleted after the test. Yields the connection string."""
    from azure.storage.blob import BlobServiceClient

    for name in ("AZURE_STORAGE_ACCOUNT_NAME", "AZURE_STORAGE_ACCOUNT_KEY", "AZURE_STORAGE_SAS_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite)
    yield azurite
    with BlobServiceClient.from_connection_string(azurite) as service:
        for container in service.list_containers():
            service.delete_container(container.name)


# Secrets: tests give SECRET wherever a secret goes (environment, credentials, tokens); a test
# whose captured output or logs contain it fails, whatever it asserted.

#: The value tests pass as a secret.
SECRET = "sdt-test-secret-4f1c9e"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Fail a test whose captured output or logs show `SECRET`, whatever it asserted."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    # Each phase's report carries the sections of the phases before it: look at its own only.
    leaked = [name for name, text in report.sections if name.endswith(report.when) and SECRET in text]
    if leaked and not report.failed:
        report.outcome = "failed"
        report.longrepr = f"the test secret appeared in: {', '.join(leaked)}"


# Real-cloud tests: marked `@pytest.mark.cloud("VARIABLE", ...)`, run only with --run-cloud
# and when the variables are set (`pytest_addoption` and `pytest_collection_modifyitems`).


def pytest_addoption(parser: pytest.Parser) -> None:
    """`--run-cloud`: also run the tests marked `cloud`."""
    parser.addoption("--run-cloud", action="store_true", help="Also run the tests that use a real cloud account.")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip each `cloud` test, with a reason naming what it needs, unless --run-cloud and its variables are set."""
    for item in items:
        marker = item.get_closest_marker("cloud")
        if marker is None:
            continue
        missing = [name for name in marker.args if not any(os.environ.get(v) for v in name.split("|"))]
        if not config.getoption("--run-cloud", default=False):
            needs = ", ".join(n.replace("|", " or ") for n in marker.args)
            item.add_marker(pytest.mark.skip(reason=f"real cloud: give --run-cloud and set {needs}"))
        elif missing:
            needs = ", ".join(n.replace("|", " or ") for n in missing)
            item.add_marker(pytest.mark.skip(reason=f"real cloud: set {needs}"))


_SESSION_TEMP = pytest.StashKey[str]()


def pytest_configure(config: pytest.Config) -> None:
    """A temporary folder of this session's own: concurrent sessions never share one."""
    config.addinivalue_line("markers", "cloud(*variables): uses a real cloud account; needs --run-cloud")
    if not config.option.basetemp:
        config.option.basetemp = config.stash[_SESSION_TEMP] = tempfile.mkdtemp(prefix="sdt-pytest-")


def pytest_unconfigure(config: pytest.Config) -> None:
    """Remove the session's temporary folder."""
    if _SESSION_TEMP in config.stash:
        shutil.rmtree(config.stash[_SESSION_TEMP], ignore_errors=True)
