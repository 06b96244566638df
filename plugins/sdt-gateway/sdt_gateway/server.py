"""Questions and requests to the Dask Gateway server, each bounded in time, each failure one line.

Every call opens dask-gateway's own client (`dask_gateway.Gateway`, asynchronous) with the
settings' address, proxy and credentials, runs on an event loop of its own in a helper thread
(so it works where a loop already runs, e.g. in Jupyter) and closes it again.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import importlib.util
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from sdt_core import ClusterStartError, SdtError, SettingsError
from sdt_gateway.settings import PLUG

if TYPE_CHECKING:
    from dask_gateway import Gateway, Options
    from dask_gateway.client import ClusterReport

    from sdt_gateway.settings import GatewaySettings

T = TypeVar("T")
#: How often a cluster's state is asked for while waiting for it.
POLL_S = 0.5
#: Gateway cluster states (dask-gateway's ClusterStatus names).
RUNNING, ENDED = "RUNNING", ("STOPPED", "FAILED")
CHECK = "check the address, that the gateway is running"
NOT_GATEWAY = "{} answers, but not as a Dask Gateway; give the gateway's address (as JupyterHub's services list it)"


def gateway_auth(settings: GatewaySettings) -> Any:
    """dask-gateway's authentication object for the settings (it holds the secrets; it has no repr of them)."""
    from dask_gateway.auth import BasicAuth, JupyterHubAuth, KerberosAuth

    if settings.auth == "jupyterhub":
        return JupyterHubAuth(api_token=settings.api_token)
    if settings.auth == "kerberos":
        return KerberosAuth()
    return BasicAuth(username=settings.username, password=settings.password)


def gateway_kwargs(settings: GatewaySettings) -> dict[str, Any]:
    """The keywords of `dask_gateway.Gateway` and `GatewayCluster` for these settings."""
    proxy = settings.proxy_address
    return {
        "address": settings.address,
        "proxy_address": int(proxy) if proxy is not None and proxy.isdigit() else proxy,
        "auth": gateway_auth(settings),
    }


def check_auth_module(settings: GatewaySettings) -> None:
    """auth=kerberos needs the `kerberos` module, which dask-gateway imports only when it authenticates."""
    if settings.auth == "kerberos" and importlib.util.find_spec("kerberos") is None:
        raise SettingsError(
            f'{PLUG}: auth=kerberos needs the kerberos module: pip install "dask-gateway[kerberos]" '
            "(and a ticket: kinit)"
        )


def ask(
    settings: GatewaySettings,
    question: Callable[[Gateway], Awaitable[T]],
    error: type[SdtError] = SettingsError,
    timeout: float | None = None,
) -> T:
    """`question(gateway)` within `timeout` (default: the settings'); a failure is `error` with one line."""
    from dask_gateway import Gateway

    limit = settings.timeout if timeout is None else timeout

    async def run() -> T:
        async with Gateway(**gateway_kwargs(settings), asynchronous=True) as gateway:
            return await asyncio.wait_for(question(gateway), limit)

    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="sdt-gateway") as pool:
        try:
            return pool.submit(asyncio.run, run()).result()
        except SdtError:
            raise
        except Exception as exc:
            raise error(f"{PLUG}: {explain(exc, settings, limit)}") from exc


def explain(exc: BaseException, settings: GatewaySettings, timeout: float) -> str:
    """What a failed request means, in words a user can act on (never a secret)."""
    import aiohttp

    where = f"the Dask Gateway at {settings.address}"
    if isinstance(exc, aiohttp.ContentTypeError):  # before its base class, ClientResponseError
        return NOT_GATEWAY.format(settings.address)
    if isinstance(exc, aiohttp.ClientResponseError):
        if exc.status in (401, 403):
            who = f"auth={settings.auth}{_who(settings)}"
            return f"{where} refused the credentials ({who}); {_fix_credentials(settings)}"
        return f"{where} answered {exc.status} {exc.message}; check the address"
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return f"no answer from {where} within {timeout:g} s; {CHECK}"
    if isinstance(exc, (aiohttp.ClientConnectionError, OSError)):
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        return f"no Dask Gateway answers at {settings.address} ({reason}); {CHECK}"
    reason = " ".join(str(exc).split())[:300] or type(exc).__name__
    return f"{where}: {type(exc).__name__}: {reason}"


def _who(settings: GatewaySettings) -> str:
    return f", user {settings.username}" if settings.auth == "basic" and settings.username else ""


def _fix_credentials(settings: GatewaySettings) -> str:
    if settings.auth == "basic":
        return "check the password (--set password=..., or dask config gateway.auth.kwargs.password)"
    if settings.auth == "jupyterhub":
        return "check the API token (--set api_token=..., or JUPYTERHUB_API_TOKEN)"
    return "check your Kerberos ticket (klist; kinit)"


def offered_options(settings: GatewaySettings, error: type[SdtError] = SettingsError) -> Options:
    """The cluster options the gateway offers this user, at the gateway's defaults."""

    async def question(gateway: Gateway) -> Options:
        try:
            return await gateway.cluster_options(use_local_defaults=False)
        except ValueError:  # dask-gateway's 404: no options page there
            raise SettingsError(f"{PLUG}: {NOT_GATEWAY.format(settings.address)}") from None

    return ask(settings, question, error)


def running_report(settings: GatewaySettings, name: str) -> ClusterReport:
    """The gateway's report on this user's running cluster `name`: its address and certificate."""
    import aiohttp

    async def question(gateway: Gateway) -> ClusterReport:
        try:
            found = await gateway.get_cluster(name)
        except ValueError:  # dask-gateway's 404
            found = None
        except aiohttp.ClientResponseError as exc:
            if exc.status != 403:
                raise
            await gateway.list_clusters()  # a refusal of the credentials themselves is said as such
            raise SettingsError(f"{PLUG}: cluster {name!r} is another user's; give one of yours") from None
        if found is not None and found.status.name == RUNNING:
            return found
        running = sorted(r.name for r in await gateway.list_clusters(status=RUNNING))
        what = f"has no cluster {name!r}" if found is None else f"has cluster {name!r} {found.status.name}, not running"
        raise SettingsError(
            f"{PLUG}: the gateway at {settings.address} {what}; your running clusters: {', '.join(running) or 'none'}"
        )

    return ask(settings, question)


def submit(settings: GatewaySettings, options: Options) -> str:
    """Ask the gateway for a cluster with `options`; its name. The cluster is then the caller's to stop."""

    async def question(gateway: Gateway) -> str:
        return str(await gateway.submit(options))

    return ask(settings, question, ClusterStartError)


def wait_until(settings: GatewaySettings, name: str, states: tuple[str, ...], timeout: float) -> str:
    """Wait until cluster `name` is in one of `states` (or has ended); its state, or the last one seen
    at `timeout`."""
    from dask_gateway.client import ClusterStatus

    async def question(gateway: Gateway) -> str:
        deadline = time.monotonic() + timeout
        while True:
            status: ClusterStatus = (await gateway.get_cluster(name)).status
            if status.name in states or status.name in ENDED or time.monotonic() > deadline:
                return status.name
            await asyncio.sleep(POLL_S)

    return ask(settings, question, ClusterStartError, timeout=timeout + settings.timeout)


def stop(settings: GatewaySettings, name: str) -> None:
    """Ask the gateway to stop cluster `name` (it returns at once; `wait_until` tells when it has)."""

    async def question(gateway: Gateway) -> None:
        await gateway.stop_cluster(name)

    ask(settings, question, ClusterStartError)
