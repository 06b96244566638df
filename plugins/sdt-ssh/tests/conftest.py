"""A real OpenSSH server for the ssh plug's tests: Debian's sshd on 127.0.0.1, throwaway keys.

Started once per test session (the nox session installs openssh-server); if it is missing
or does not start, every test that needs it fails with a message saying why. sshd sets
`SDT_SSH_TEST_SSHD` in every session it runs, and sdt_core.testing's MARKER too, so every
process started through it can be found again, even one whose parents have exited.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from sdt_core.testing import MARKER, SECRET, free_port

SSHD = Path("/usr/sbin/sshd")
TAG = "SDT_SSH_TEST_SSHD"


@dataclass(frozen=True)
class SSHServer:
    """The running test sshd: its port, keys and files."""

    port: int
    client_key: Path  # accepted, no passphrase
    encrypted_key: Path  # accepted, passphrase SECRET
    wrong_key: Path  # not accepted
    known_hosts: Path  # the host key, for 127.0.0.1 and 127.0.0.2 on `port`
    process: subprocess.Popen[bytes]
    tag: str  # the value of TAG in every session sshd runs
    log: Path

    def settings(self, **more: object) -> dict[str, object]:
        """Settings of the ssh plug for a scheduler and one worker host on this server."""
        return {
            "hosts": ["127.0.0.1", "127.0.0.1"],
            "port": self.port,
            "key_file": str(self.client_key),
            "known_hosts": str(self.known_hosts),
            "threads": 1,
            "memory": 1,
            "dashboard_port": 0,
        } | more

    def cli_settings(self) -> list[str]:
        """The same on the command line."""
        sets = {
            "hosts": "127.0.0.1,127.0.0.1",
            "port": self.port,
            "key_file": self.client_key,
            "known_hosts": self.known_hosts,
            "dashboard_port": 0,
        }
        return [arg for key, value in sets.items() for arg in ("--set", f"{key}={value}")]

    def sessions(self) -> dict[int, str]:
        """Live processes started through this sshd (its session children and what they ran)."""
        found: dict[int, psutil.Process] = {}
        try:
            found |= {p.pid: p for p in psutil.Process(self.process.pid).children(recursive=True)}
        except psutil.NoSuchProcess:
            pass
        for proc in psutil.process_iter():
            try:
                if proc.environ().get(TAG) == self.tag:
                    found[proc.pid] = proc
            except (psutil.Error, OSError):
                continue
        alive = {}
        for pid, proc in found.items():
            try:
                if proc.status() != psutil.STATUS_ZOMBIE:
                    alive[pid] = " ".join(proc.cmdline())
            except psutil.Error:
                continue
        return alive

    def wait_no_sessions(self, timeout: float = 30.0) -> None:
        """Fail unless every process started through sshd is gone within `timeout`."""
        deadline = time.monotonic() + timeout
        while (left := self.sessions()) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert left == {}, f"left behind on the SSH side: {left}"


def keygen(path: Path, passphrase: str = "") -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-C", "", "-f", str(path)], check=True)
    return path


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SSHServer]:
    """Debian's OpenSSH server on 127.0.0.1 and a free port, for this test session."""
    if not SSHD.exists() or shutil.which("ssh-keygen") is None:
        pytest.fail(f"{SSHD} or ssh-keygen is missing: install openssh-server and openssh-client (apt-get install)")
    folder = tmp_path_factory.mktemp("sshd")
    try:
        Path("/run/sshd").mkdir(exist_ok=True)  # its privilege separation directory
    except OSError as exc:
        pytest.fail(f"cannot make /run/sshd for sshd ({exc.strerror}): run the tests as root")
    host_key = keygen(folder / "host_key")
    client_key = keygen(folder / "client_key")
    encrypted_key = keygen(folder / "encrypted_key", passphrase=SECRET)
    wrong_key = keygen(folder / "wrong_key")
    authorized = folder / "authorized_keys"
    authorized.write_text("".join(Path(f"{k}.pub").read_text() for k in (client_key, encrypted_key)))
    port = free_port()
    public = " ".join(Path(f"{host_key}.pub").read_text().split()[:2])
    known_hosts = folder / "known_hosts"
    known_hosts.write_text("".join(f"[{ip}]:{port} {public}\n" for ip in ("127.0.0.1", "127.0.0.2")))
    tag = uuid.uuid4().hex
    log = folder / "sshd.log"
    # Verified command line (shared NOTES.md); -D keeps it in the foreground, -e logs to stderr.
    command = [
        str(SSHD), "-D", "-e", "-f", "/dev/null", "-p", str(port), "-h", str(host_key),
        "-o", "ListenAddress=127.0.0.1",
        "-o", f"AuthorizedKeysFile={authorized}",
        "-o", f"PidFile={folder / 'sshd.pid'}",
        "-o", "StrictModes=no",
        "-o", f"SetEnv={TAG}={tag} {MARKER}={os.environ[MARKER]}",
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    server = SSHServer(port, client_key, encrypted_key, wrong_key, known_hosts, process, tag, log)
    try:
        deadline = time.monotonic() + 30
        while "Server listening on 127.0.0.1" not in log.read_text(errors="replace"):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"sshd did not start (exit {process.poll()}): {log.read_text(errors='replace')[-500:]}")
            time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        process.wait(timeout=30)
