"""A Dask scheduler that is already running, by its address: attached to, and left running."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sdt_core import Address, Attached, Host, Settings, SettingsError, hookimpl, setting

if TYPE_CHECKING:
    from distributed import Security

log = logging.getLogger(__name__)

#: Dask's own config key for the scheduler a client connects to (`DASK_SCHEDULER_ADDRESS`).
DASK_ADDRESS_CONFIG = "scheduler-address"
SCHEMES = ("tcp", "tls")
NOT_HERE = "Does not apply: the scheduler's own workers run the keys (giving it is an error)."


class AddressSettings(Settings):
    workers: int | None = setting(None, NOT_HERE)  # type: ignore[assignment]
    threads: int | None = setting(None, NOT_HERE)  # type: ignore[assignment]
    memory: float | None = setting(None, NOT_HERE)  # type: ignore[assignment]
    address: str | None = setting(
        None,
        "The scheduler's address, tcp://HOST:PORT or tls://HOST:PORT; "
        "default: dask config scheduler-address (DASK_SCHEDULER_ADDRESS).",
    )
    ca: str | None = setting(None, "For tls://: the file (PEM) of the CA that signed the cluster's certificates.")
    cert: str | None = setting(None, "For tls://: this client's certificate file (PEM).")
    key: str | None = setting(None, "For tls://: this client's private key file (PEM); default: in the cert file.")
    insecure: bool = setting(
        False, "Allow a plain tcp:// address that other machines can reach: no TLS, no authentication."
    )
    timeout: float = setting(10.0, "Seconds to wait for the scheduler to answer.", gt=0, le=300)

    def check(self) -> None:
        """Refuse workers, threads and memory; find the address; require TLS beyond this machine."""
        for name in ("workers", "threads", "memory"):
            if name in self.given:
                raise SettingsError(
                    f"plug 'address': {name} does not apply: the scheduler at the address has its own "
                    f"workers; leave {name} out"
                )
        source = ""
        if self.address is None:
            import dask.config

            self.address = dask.config.get(DASK_ADDRESS_CONFIG, default=None) or None
            source = f" (from dask config {DASK_ADDRESS_CONFIG})"
        if not self.address:
            raise SettingsError(
                "plug 'address': no scheduler address; give --set address=tls://HOST:PORT "
                "(or set DASK_SCHEDULER_ADDRESS)"
            )
        scheme, host = _parse(self.address, source)
        self.address = self.address if "://" in self.address else f"tcp://{self.address}"
        files = [name for name in ("ca", "cert", "key") if getattr(self, name)]
        if scheme == "tcp" and files:
            raise SettingsError(
                f"plug 'address': {', '.join(files)} apply to tls:// addresses, and {self.address}{source} "
                "is tcp://; give address=tls://HOST:PORT"
            )
        if scheme == "tls" and not (self.ca and self.cert):
            raise SettingsError(
                f"plug 'address': {self.address}{source} is tls://: give ca=FILE and cert=FILE "
                "(the cluster's CA and this client's certificate; key=FILE if not in the cert file)"
            )
        if scheme == "tcp" and not host.is_loopback:
            if not self.insecure:
                raise SettingsError(
                    f"plug 'address': {self.address}{source} is plain TCP to another machine: no TLS, no "
                    "authentication; give a tls:// address with ca, cert and key, or --set insecure=true"
                )
            log.warning("address: %s is plain TCP (insecure=True): no TLS, no authentication", self.address)


def _parse(address: str, source: str) -> tuple[str, Host]:
    """The scheme and host of an address, or one line saying what is wrong with it."""
    scheme, sep, location = address.partition("://")
    if not sep:
        scheme, location = "tcp", address
    if scheme not in SCHEMES:
        raise SettingsError(
            f"plug 'address': {address}{source} is a {scheme}:// address; give tcp://HOST:PORT or tls://HOST:PORT"
        )
    try:
        where = Address.sdt_check(location)
    except (TypeError, ValueError):
        where = None
    host = where.host if where is not None else None
    if where is None or host is None or int(where.rpartition(":")[2]) == 0:
        raise SettingsError(
            f"plug 'address': {address!r}{source} is not an address; give tcp://HOST:PORT or tls://HOST:PORT"
        )
    return scheme, host


@hookimpl
def plug_settings() -> type[AddressSettings]:
    return AddressSettings


def _security(settings: AddressSettings) -> Security | None:
    if not settings.ca:
        return None
    from distributed import Security

    return Security(
        tls_ca_file=settings.ca, tls_client_cert=settings.cert, tls_client_key=settings.key, require_encryption=True
    )


@hookimpl
def preflight(settings: AddressSettings) -> None:
    """The TLS files can be read, and a Dask scheduler answers at the address within the timeout."""
    for name in ("ca", "cert", "key"):
        path = getattr(settings, name)
        if path is None:
            continue
        try:
            text = Path(path).read_bytes()
        except OSError as exc:
            raise SettingsError(f"plug 'address': cannot read {name} {path}: {exc.strerror}") from None
        if b"-----BEGIN " not in text:
            raise SettingsError(f"plug 'address': {name} {path} is not a PEM file")
    identity = _identity(str(settings.address), _security(settings), settings.timeout)
    if identity.get("type") != "Scheduler":
        raise SettingsError(
            f"plug 'address': {settings.address} is a Dask {identity.get('type', 'server')}, not a scheduler; "
            "give the scheduler's address"
        )
    if not identity.get("workers"):
        log.warning("address: the scheduler at %s has no workers yet; the run waits for some", settings.address)


def _identity(address: str, security: Security | None, timeout: float) -> dict[str, Any]:
    """What the server at `address` says it is, within `timeout` seconds; else one line."""
    import asyncio

    from distributed.core import rpc

    async def ask() -> dict[str, Any]:
        args = security.get_connection_args("client") if security else {}
        async with rpc(address, timeout=timeout, connection_args=args) as server:
            return dict(await server.identity())

    try:
        return asyncio.run(asyncio.wait_for(ask(), timeout + 5))
    except Exception as exc:
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise SettingsError(
            f"plug 'address': no Dask scheduler answers at {address} within {timeout:g} s ({reason}); check the "
            "address, that the scheduler is running" + (" and the certificates" if security else "")
        ) from None


@hookimpl
def workers_share_files(settings: AddressSettings) -> None:
    """Unknown: the workers of a running scheduler may be anywhere; `sdt run` asks one before the first key."""
    return None


@hookimpl
def make_cluster(settings: AddressSettings) -> Attached:
    return Attached(str(settings.address), security=_security(settings), timeout=settings.timeout)
