"""Checks before a start that open no SSH connection: key file, known hosts, host names."""

from __future__ import annotations

import os
import socket

from sdt_core import SettingsError
from sdt_ssh.cluster import known_hosts_file
from sdt_ssh.settings import SSHSettings


def check(settings: SSHSettings) -> None:
    """Raise `SettingsError` with one line for the first thing that would make the start fail."""
    if settings.key_file is not None:
        check_key(os.path.expanduser(settings.key_file), settings.passphrase)
    addresses = {host: resolve(host, settings.port) for host in dict.fromkeys(settings.hosts)}
    path = known_hosts_file(settings)
    if path is not None:
        check_known_hosts(path, addresses, settings.port)


def check_key(path: str, passphrase: str | None) -> None:
    import asyncssh

    try:
        asyncssh.read_private_key(path, passphrase)
    except OSError as exc:
        raise SettingsError(
            f"plug 'ssh': key_file {path} cannot be read: {exc.strerror}; give a readable private key"
        ) from None
    except (asyncssh.KeyImportError, ValueError) as exc:
        raise SettingsError(f"plug 'ssh': key_file {path}: {exc}; give its passphrase or another key") from None


def resolve(host: str, port: int) -> str:
    """The first address of `host`, or a one-line error."""
    try:
        return str(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][4][0])
    except (OSError, UnicodeError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise SettingsError(f"plug 'ssh': host {host} does not resolve ({reason}); check its name in hosts") from None


def check_known_hosts(path: str, addresses: dict[str, str], port: int) -> None:
    import asyncssh

    try:
        trusted = asyncssh.read_known_hosts(path)
    except OSError as exc:
        raise SettingsError(
            f"plug 'ssh': known_hosts {path} cannot be read: {exc.strerror}; give the file ssh keeps the hosts' "
            "keys in, or known_hosts=none to trust any host key"
        ) from None
    for host, address in addresses.items():
        host_keys, ca_keys, *_ = trusted.match(host, address, port)
        if not host_keys and not ca_keys:
            where = host if port == 22 else f"-p {port} {host}"
            raise SettingsError(
                f"plug 'ssh': host {host} (port {port}) has no key in {path}; connect once with `ssh {where}` and "
                "check the key it shows, or give known_hosts=none to trust any host key"
            )
