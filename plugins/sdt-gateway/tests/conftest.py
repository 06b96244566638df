"""A real Dask Gateway for the tests: dask-gateway-server on 127.0.0.1, one per session.

It runs with its local backend (`UnsafeLocalBackend`: schedulers and workers are processes of
this machine, children of the server) and `SimpleAuthenticator` (one password for every user;
the password is `SECRET`, which no test may show). It offers three cluster options: worker cores
(1 or 2), worker memory (0.5 to 4 GiB) and an environment. Workers run this Python through
`python -m distributed.cli.dask_worker` (distributed has no `dask-worker` command any more).
The server stops every cluster when it stops; a process of it left behind fails the session.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import psutil
import pytest

from sdt_core.testing import (  # noqa: F401
    MARKER,
    SECRET,
    dask_scratch,
    free_port,
    leak_check,
    pytest_configure,
    pytest_runtest_makereport,
    pytest_unconfigure,
)

T = TypeVar("T")
START_TIMEOUT = 120  # seconds for the server to answer; its imports take ~10 s on a loaded 2-core machine
CONFIG = """\
import sys

from dask_gateway_server.options import Float, Integer, Mapping, Options

c.DaskGateway.address = "127.0.0.1:{api_port}"
c.Proxy.address = "127.0.0.1:{proxy_port}"
c.DaskGateway.backend_class = "dask_gateway_server.backends.local.UnsafeLocalBackend"
c.DaskGateway.authenticator_class = "dask_gateway_server.auth.SimpleAuthenticator"
c.SimpleAuthenticator.password = {password!r}
c.LocalBackend.clusters_directory = {clusters!r}
c.LocalBackend.inherited_environment = [
    "PATH", "VIRTUAL_ENV", "LANG", "LC_ALL", "DASK_TEMPORARY_DIRECTORY", {marker!r}
]
c.ClusterConfig.scheduler_cmd = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
c.ClusterConfig.worker_cmd = [sys.executable, "-m", "distributed.cli.dask_worker"]
c.ClusterConfig.cluster_max_workers = 2
c.DBBackendBase.cluster_start_timeout = 300
c.DBBackendBase.worker_start_timeout = 300


def options_handler(options):
    return {{
        "worker_cores": options.worker_cores,
        "worker_memory": "%fG" % options.worker_memory,
        "environment": options.environment,
    }}


c.Backend.cluster_options = Options(
    Integer("worker_cores", default=1, min=1, max=2, label="Worker cores"),
    Float("worker_memory", default=1, min=0.5, max=4, label="Worker memory (GiB)"),
    Mapping("environment", default={{}}, label="Environment variables"),
    handler=options_handler,
)
"""


@dataclass(frozen=True)
class GatewayServer:
    """The running server: where the client reaches it, and how to log in."""

    address: str  # the proxy's HTTP address: the one clients use
    user: str
    password: str
    log: Path

    def settings(self) -> list[str]:
        """`sdt` arguments that reach this gateway as the user."""
        return [
            "--set",
            f"address={self.address}",
            "--set",
            f"username={self.user}",
            "--set",
            f"password={self.password}",
        ]

    def ask(self, question: Callable[[Any], Awaitable[T]]) -> T:
        """`question(gateway)`: dask-gateway's own asynchronous client, logged in as the user."""
        from dask_gateway import BasicAuth, Gateway

        async def run() -> T:
            async with Gateway(self.address, auth=BasicAuth(self.user, self.password), asynchronous=True) as gateway:
                return await question(gateway)

        return asyncio.run(run())

    def clusters(self) -> dict[str, str]:
        """The user's clusters that have not stopped, name -> state."""

        async def question(gateway: Any) -> dict[str, str]:
            listed = await gateway.list_clusters(status=["pending", "running", "stopping"])
            return {c.name: c.status.name for c in listed}

        return self.ask(question)

    def wait_no_clusters(self, timeout: float = 60) -> dict[str, str]:
        """Wait until the user has no cluster that has not stopped; those left after `timeout`."""
        deadline = time.monotonic() + timeout
        while (left := self.clusters()) and time.monotonic() < deadline:
            time.sleep(0.5)
        return left


def _answers(address: str) -> bool:
    try:
        with urllib.request.urlopen(f"{address}/api/version", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _stop(server: subprocess.Popen[bytes]) -> list[psutil.Process]:
    """SIGTERM to the server, which stops its clusters and proxy first; what is left of it after 90 s
    is killed, and returned."""
    if server.poll() is not None:  # it ended on its own: the leak check finds what it left
        return []
    root = psutil.Process(server.pid)
    tree = [root, *root.children(recursive=True)]
    root.terminate()
    _, left = psutil.wait_procs(tree, timeout=90)
    for proc in left:
        proc.kill()
    server.wait(timeout=30)
    return left


@pytest.fixture(scope="session")
def gateway_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    """dask-gateway-server on 127.0.0.1 with free ports, stopped (with every cluster) at the end.

    It starts after the autouse `dask_scratch`, so that its clusters keep Dask's scratch space there."""
    folder = tmp_path_factory.mktemp("gateway")
    api_port, proxy_port = free_port(), free_port()
    config = folder / "dask_gateway_config.py"
    config.write_text(
        CONFIG.format(
            api_port=api_port,
            proxy_port=proxy_port,
            password=SECRET,
            clusters=str(folder / "clusters"),
            marker=MARKER,
        )
    )
    log = folder / "server.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "dask_gateway_server", "-f", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=folder,
        )
    running = GatewayServer(f"http://127.0.0.1:{proxy_port}", "analyst", SECRET, log)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not _answers(running.address):
            if server.poll() is not None or time.monotonic() > deadline:
                tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
                pytest.fail(f"dask-gateway-server did not start; its log:\n{tail}", pytrace=False)
            time.sleep(0.3)
        yield running
    finally:
        left = _stop(server)
    assert not left, f"dask-gateway-server left processes behind: {left}"


@pytest.fixture
def gateway_env(gateway_server: GatewayServer) -> dict[str, str]:
    """The environment of an `sdt` process with nothing of the gateway configured."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("DASK_GATEWAY__", "JUPYTERHUB_"))}
