"""An AzureVMCluster whose resources carry the start's tags, whose scheduler closes itself when
idle, and whose workers may run on Spot VMs, pay-as-you-go when Spot has no capacity.

Imported only when a cluster is made (it imports dask-cloudprovider's Azure backend).
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import TYPE_CHECKING, Any

from dask_cloudprovider.azure import AzureVMCluster
from dask_cloudprovider.azure.azurevm import AzureVMWorker

from sdt_azure.tags import START_TAG, STARTED_TAG
from sdt_core import IDLE_PRELOAD, idle_environment

if TYPE_CHECKING:
    from sdt_azure import AzureSettings

log = logging.getLogger("sdt_azure")

#: What makes a VM a Spot VM that Azure deletes, with its disks, when it evicts it.
SPOT_VM_OPTIONS: dict[str, Any] = {
    "priority": "Spot",
    "eviction_policy": "Delete",
    "billing_profile": {"max_price": -1},
}
#: The error codes Azure answers a Spot VM it has no capacity for with.
NO_SPOT_CAPACITY = (
    "SkuNotAvailable",
    "AllocationFailed",
    "ZonalAllocationFailed",
    "OverconstrainedAllocationRequest",
    "OverconstrainedZonalAllocationRequest",
)


def error_code(exc: Exception) -> str:
    """The Azure error code of an SDK exception ("" if it has none)."""
    return str(getattr(getattr(exc, "error", None), "code", "") or "")


class SpotAzureVMWorker(AzureVMWorker):
    """A worker VM on Spot (evicted: deleted); created pay-as-you-go when Spot has no capacity."""

    async def create_vm(self) -> Any:
        from azure.core.exceptions import HttpResponseError

        own: dict[str, Any] = dict(self.extra_vm_options)  # type: ignore[has-type]
        self.extra_vm_options = own | SPOT_VM_OPTIONS
        try:
            return await super().create_vm()
        except HttpResponseError as exc:
            code = error_code(exc)
            if code not in NO_SPOT_CAPACITY:
                raise
            log.warning("azure: Spot has no capacity for worker %s (%s); it runs pay-as-you-go", self.name, code)
            self.extra_vm_options = own
            return await super().create_vm()  # the same network interface, created again or kept


class SdtAzureVMCluster(AzureVMCluster):
    """AzureVMCluster with the start's tags on every VM, network interface and public IP."""

    def __init__(self, *, start_tags: dict[str, str], spot: bool, **kwargs: Any) -> None:
        self.start_tags = dict(start_tags)
        self.spot = spot
        super().__init__(**kwargs)

    async def _start(self) -> None:
        if self.spot:  # AzureVMCluster.__init__ set its own worker class
            self.worker_class = SpotAzureVMWorker
        await super()._start()

    def get_tags(self) -> dict[str, str]:
        return {**super().get_tags(), **self.start_tags}


def start(settings: AzureSettings) -> AzureVMCluster:
    """Start an Azure cluster with `settings` (after the preflight)."""
    from sdt_azure.preflight import subscription_of

    kwargs = settings.backend_kwargs()
    kwargs["security"] = kwargs.pop("tls")  # True: a temporary certificate, as VMCluster makes it
    kwargs["subscription_id"] = subscription_of(settings)
    worker_options = {
        **kwargs.pop("worker_options", {}),
        "nthreads": settings.threads,
        "memory_limit": f"{settings.memory:.2f}GiB",
    }
    # sdt-core's idle rule, from the scheduler's start: it holds when every client is gone.
    scheduler_options = dict(kwargs.pop("scheduler_options", None) or {})
    if idle_environment() and "preload" not in scheduler_options:
        scheduler_options["preload"] = IDLE_PRELOAD
        kwargs["env_vars"] = {**kwargs["env_vars"], **idle_environment()}
    start_tags = {
        **kwargs.pop("tags"),
        START_TAG: uuid.uuid4().hex,
        STARTED_TAG: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    return SdtAzureVMCluster(
        n_workers=settings.workers,
        worker_options=worker_options,
        scheduler_options=scheduler_options,
        start_tags=start_tags,
        spot=kwargs.pop("spot"),
        **kwargs,
    )
