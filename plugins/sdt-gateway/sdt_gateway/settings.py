"""The settings of the gateway plug, declared once; unset ones default to dask-gateway's own config.

A user whose JupyterHub configures dask-gateway (dask config `gateway.address`,
`gateway.proxy-address`, `gateway.auth.type`, `gateway.auth.kwargs`, `gateway.cluster.options`,
or their `DASK_GATEWAY__*` variables) gives none of them: `check()` fills in what was not given,
as `dask_gateway.Gateway()` would, and refuses what cannot work in one line.
"""

from __future__ import annotations

import getpass
import os
from typing import Any
from urllib.parse import urlparse

from sdt_core import Settings, SettingsError, setting

PLUG = "plug 'gateway'"
AUTH_TYPES = ("basic", "kerberos", "jupyterhub")
#: The settings each authentication takes (the keywords of dask-gateway's auth classes).
AUTH_SETTINGS = {"basic": ("username", "password"), "kerberos": (), "jupyterhub": ("api_token",)}
#: What a cluster the plug asks for is made of; an attached cluster has its own.
CLUSTER_REQUEST = ("workers", "threads", "memory", "options")


class GatewaySettings(Settings):
    """Workers, threads and memory come from Settings: here the number of workers the cluster is scaled
    to, and (when given) the gateway's worker cores and memory options."""

    workers: int = setting(2, "Number of workers the gateway is asked for.", ge=1)
    threads: int | None = setting(  # type: ignore[assignment]
        None,
        "Threads (cores) per worker: the gateway's option worker_cores (and worker_threads); default: the gateway's.",
        ge=1,
    )
    memory: float | None = setting(  # type: ignore[assignment]
        None, "Memory per worker in GiB: the gateway's option worker_memory; default: the gateway's.", gt=0
    )
    address: str | None = setting(
        None,
        "The gateway's address, https://HOST[:PORT]; default: dask config gateway.address (DASK_GATEWAY__ADDRESS).",
    )
    proxy_address: str | None = setting(
        None,
        "The gateway's scheduler proxy, HOST:PORT or a port; default: dask config gateway.proxy-address, "
        "else the address's host and port.",
    )
    auth: str | None = setting(
        None,
        "How to authenticate: basic, kerberos or jupyterhub; default: dask config gateway.auth.type, else basic.",
        choices=AUTH_TYPES,
    )
    username: str | None = setting(
        None, "auth=basic: the user name; default: dask config gateway.auth.kwargs.username, else your login name."
    )
    password: str | None = setting(
        None, "auth=basic: the password; default: dask config gateway.auth.kwargs.password.", secret=True
    )
    api_token: str | None = setting(
        None,
        "auth=jupyterhub: the API token; default: dask config gateway.auth.kwargs.api_token, "
        "else JUPYTERHUB_API_TOKEN.",
        secret=True,
    )
    options: dict[str, Any] = setting(
        {},
        "The gateway's cluster options, e.g. image=...,worker_cores=2 (JSON for a mapping); "
        "over dask config gateway.cluster.options; `sdt plan gateway` lists what the gateway offers.",
        secret=True,  # options such as `environment` carry credentials to the workers
    )
    cluster_name: str | None = setting(
        None, "Attach to this running cluster of yours instead of asking for one; it is left running."
    )
    timeout: float = setting(30.0, "Seconds to wait for each answer of the gateway.", gt=0, le=600)
    start_timeout: float = setting(
        600.0, "Seconds to wait for a new cluster's scheduler and first worker (the gateway may queue them).", gt=0
    )

    def check(self) -> None:
        """Fill in from dask-gateway's config what was not given; refuse what cannot work, in one line."""
        if self.cluster_name is not None:
            _refuse_cluster_request(self.given, self.cluster_name)
        self.address = _address(self.address)
        self.proxy_address = self.proxy_address or _proxy_address()
        self.auth = self.auth or _configured("gateway.auth.type") or "basic"
        if self.auth not in AUTH_TYPES:
            raise SettingsError(
                f"{PLUG}: dask config gateway.auth.type is {self.auth!r}; the plug takes "
                f"{', '.join(AUTH_TYPES)}: give --set auth=basic (or kerberos, jupyterhub)"
            )
        for name in ("username", "password", "api_token"):
            if name in self.given and name not in AUTH_SETTINGS[self.auth]:
                raise SettingsError(f"{PLUG}: {name} applies to auth={_auth_of(name)}, not auth={self.auth}")
        kwargs = _configured("gateway.auth.kwargs") or {}
        for name in AUTH_SETTINGS[self.auth]:
            if getattr(self, name) is None and kwargs.get(name) is not None:
                setattr(self, name, _template(str(kwargs[name]), f"gateway.auth.kwargs.{name}"))
        if self.auth == "basic" and self.username is None:
            self.username = getpass.getuser()  # as dask-gateway's BasicAuth
        if self.auth == "jupyterhub":
            self.api_token = self.api_token or os.environ.get("JUPYTERHUB_API_TOKEN")
            if not self.api_token:
                raise SettingsError(
                    f"{PLUG}: auth=jupyterhub needs an API token: set JUPYTERHUB_API_TOKEN or give --set api_token=..."
                )

    def proxy(self) -> str:
        """The scheduler proxy's address as dask-gateway derives it: gateway://HOST:PORT."""
        address = urlparse(str(self.address))
        proxy = self.proxy_address
        if proxy is None:
            port = address.port or {"http": 80, "https": 443}[address.scheme]
            return f"gateway://{address.hostname}:{port}"
        if proxy.isdigit():
            return f"gateway://{address.hostname}:{proxy}"
        return f"gateway://{urlparse(proxy).netloc or proxy}"

    def configured_options(self) -> dict[str, Any]:
        """The cluster options of dask config `gateway.cluster.options` (templates filled in)."""
        configured = _configured("gateway.cluster.options") or {}
        return {key: _template(value, f"gateway.cluster.options.{key}") for key, value in configured.items()}


def _auth_of(name: str) -> str:
    return next(kind for kind, names in AUTH_SETTINGS.items() if name in names)


def _refuse_cluster_request(given: frozenset[str], cluster_name: str) -> None:
    for name in CLUSTER_REQUEST:
        if name in given:
            raise SettingsError(
                f"{PLUG}: {name} does not apply with cluster_name={cluster_name}: the running cluster has its "
                f"own workers and options; leave {name} out"
            )


def _configured(key: str) -> Any:
    import dask.config

    return dask.config.get(key, default=None)


def _template(value: Any, key: str) -> Any:
    """A value of dask-gateway's config with environment variables filled in, as dask-gateway does."""
    if not isinstance(value, str):
        return value
    try:
        return value.format(**os.environ)
    except KeyError as missing:
        raise SettingsError(
            f"{PLUG}: dask config {key} names the environment variable {missing}, which is not set"
        ) from None
    except (ValueError, IndexError):
        raise SettingsError(f"{PLUG}: dask config {key} is not a template dask-gateway can fill in") from None


def _address(given: str | None) -> str:
    source = ""
    if given is None:
        given = _template(_configured("gateway.address"), "gateway.address")
        source = " (from dask config gateway.address)"
    if not given:
        raise SettingsError(
            f"{PLUG}: no gateway address; give --set address=https://HOST (or set DASK_GATEWAY__ADDRESS, "
            "dask config gateway.address)"
        )
    parsed = urlparse(str(given))
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise SettingsError(
            f"{PLUG}: address {given!r}{source} is not an http:// or https:// address; give https://HOST[:PORT]"
        )
    return str(given).rstrip("/")


def _proxy_address() -> str | None:
    configured = _template(_configured("gateway.proxy-address"), "gateway.proxy-address")
    return None if configured is None else str(configured)
