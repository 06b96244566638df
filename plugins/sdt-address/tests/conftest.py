"""Real `dask scheduler` and `dask worker` processes, started and stopped by the tests.

They stand for a scheduler someone else runs: the plug under test only gets its address.
The TLS one uses a CA and a certificate made here with `cryptography`, in a temporary folder.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

START_TIMEOUT = 180  # seconds; a loaded 2-core machine takes tens of seconds to start a worker


@dataclass
class Scheduler:
    """A scheduler process and its worker processes; `security` for a TLS one."""

    address: str
    processes: list[subprocess.Popen] = field(default_factory=list)
    tls: dict[str, str] = field(default_factory=dict)  # ca, cert, key: file paths

    def security(self):
        from distributed import Security

        return Security(
            tls_ca_file=self.tls["ca"],
            tls_client_cert=self.tls["cert"],
            tls_client_key=self.tls["key"],
            require_encryption=True,
        )

    def client(self):
        from distributed import Client

        return Client(self.address, security=self.security() if self.tls else None, timeout=60, set_as_default=False)

    def state(self) -> dict:
        """What the attached run must leave as it is: the workers (address: pid), the scheduler's plugins."""
        import os

        with self.client() as client:
            assert client.submit(sum, [1, 2]).result(timeout=60) == 3  # it still computes
            return {
                "workers": client.run(os.getpid),
                "plugins": client.run_on_scheduler(lambda dask_scheduler: sorted(dask_scheduler.plugins)),
            }


def _tls_flags(tls: dict[str, str]) -> list[str]:
    if not tls:
        return []
    return ["--tls-ca-file", tls["ca"], "--tls-cert", tls["cert"], "--tls-key", tls["key"]]


def start(folder: Path, workers: int, tls: dict[str, str] | None = None) -> Scheduler:
    """A scheduler on 127.0.0.1 and `workers` workers (1 thread, 1 GiB each), each a real process."""
    tls = tls or {}
    file = folder / "scheduler.json"
    logs = folder / "logs"
    logs.mkdir(exist_ok=True)
    processes = []

    def spawn(name: str, *args: str) -> None:
        with open(logs / f"{name}.log", "w") as log:
            processes.append(subprocess.Popen([sys.executable, "-m", *args], stdout=log, stderr=subprocess.STDOUT))

    try:
        spawn(
            "scheduler",
            "distributed.cli.dask_scheduler",
            *["--host", "127.0.0.1", "--port", "0", "--dashboard-address", "127.0.0.1:0"],
            *(["--protocol", "tls"] if tls else []),
            *_tls_flags(tls),
            *["--scheduler-file", str(file)],
        )
        for n in range(workers):
            spawn(
                f"worker-{n}",
                "distributed.cli.dask_worker",
                *["--scheduler-file", str(file), "--host", "127.0.0.1", "--nthreads", "1", "--memory-limit", "1GiB"],
                *_tls_flags(tls),
            )
        deadline = time.monotonic() + START_TIMEOUT
        while not file.exists() or not file.read_text().strip():
            if time.monotonic() > deadline or processes[0].poll() is not None:
                raise RuntimeError(f"the scheduler did not start: {(logs / 'scheduler.log').read_text()[-2000:]}")
            time.sleep(0.2)
        scheduler = Scheduler(json.loads(file.read_text())["address"], processes, tls)
        with scheduler.client() as client:
            client.wait_for_workers(workers, timeout=START_TIMEOUT)
        return scheduler
    except BaseException:
        stop(processes)
        raise


def stop(processes: list[subprocess.Popen]) -> None:
    """Stop the workers, then the scheduler; fail if any process of theirs is left."""
    tree = []
    for proc in processes:
        try:
            tree += [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            pass
    for proc in reversed(processes):  # workers first
        proc.terminate()
    for proc in reversed(processes):
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    _, alive = psutil.wait_procs(tree, timeout=30)
    for proc in alive:
        proc.kill()
    assert not alive, f"left behind: {alive}"


@pytest.fixture(scope="module")
def scheduler(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scheduler]:
    """A plain-TCP scheduler on loopback with 2 workers."""
    running = start(tmp_path_factory.mktemp("scheduler"), workers=2)
    yield running
    stop(running.processes)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A CA, and a certificate for 127.0.0.1 it signed (for server and client alike), as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    folder = tmp_path_factory.mktemp("tls")
    now = datetime.datetime.now(datetime.timezone.utc)

    def certificate(subject: str, key, issuer: str, signer, ca: bool) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
            ).add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False,
            )
        return builder.sign(signer, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = certificate("sdt-test-ca", ca_key, "sdt-test-ca", ca_key, ca=True)
    cert = certificate("sdt-test-cluster", key, "sdt-test-ca", ca_key, ca=False)
    files = {"ca": folder / "ca.pem", "cert": folder / "cert.pem", "key": folder / "key.pem"}
    files["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files["cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files["key"].write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return {name: str(path) for name, path in files.items()}


@pytest.fixture(scope="module")
def tls_scheduler(tmp_path_factory: pytest.TempPathFactory, certificates: dict[str, str]) -> Iterator[Scheduler]:
    """A TLS scheduler on loopback with 1 worker; every connection needs the certificates."""
    running = start(tmp_path_factory.mktemp("tls-scheduler"), workers=1, tls=certificates)
    yield running
    stop(running.processes)
