"""Checks before a start, with Azure SDK calls that create nothing (`azure-identity`,
`azure-mgmt-network`, `azure-mgmt-compute`, as dask-cloudprovider uses them)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from sdt_core import SettingsError

if TYPE_CHECKING:
    from sdt_azure import AzureSettings

MANAGEMENT_SCOPE = "https://management.azure.com/.default"


def _fail(message: str) -> SettingsError:
    return SettingsError(f"plug 'azure': {message}")


def subscription_of(settings: AzureSettings) -> str | None:
    import dask.config

    return (
        settings.subscription_id
        or dask.config.get("cloudprovider.azure.subscription_id", default=None)
        or os.environ.get("AZURE_SUBSCRIPTION_ID")
    )


def preflight(settings: AzureSettings) -> None:
    """Raise `SettingsError` with one line naming what to set; create nothing."""
    from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError
    from azure.identity import DefaultAzureCredential
    from azure.mgmt.compute import ComputeManagementClient
    from azure.mgmt.network import NetworkManagementClient

    if not settings.docker_image:
        raise _fail("no docker_image; build one with `sdt image DIR`, push it, and set docker_image=REPOSITORY:TAG")
    for name in ("location", "resource_group", "vnet", "security_group"):
        if not getattr(settings, name):
            raise _fail(f"no {name}; set {name}=... (`sdt info azure`)")
    location, group = str(settings.location), str(settings.resource_group)
    vnet_name, nsg = str(settings.vnet), str(settings.security_group)
    subscription = subscription_of(settings)
    if not subscription:
        raise _fail("no subscription; set subscription_id=... or AZURE_SUBSCRIPTION_ID (`az account list`)")
    credential = DefaultAzureCredential()
    try:
        credential.get_token(MANAGEMENT_SCOPE)
    except ClientAuthenticationError:
        raise _fail(
            "no Azure credentials found; run `az login`, or set AZURE_CLIENT_ID, AZURE_TENANT_ID and "
            "AZURE_CLIENT_SECRET"
        ) from None
    compute = ComputeManagementClient(credential, subscription)
    try:
        sizes = {s.name: s for s in compute.virtual_machine_sizes.list(location)}
    except HttpResponseError:
        raise _fail(f"location {settings.location} is not an Azure location (`az account list-locations`)") from None
    network = NetworkManagementClient(credential, subscription)
    try:
        vnet = network.virtual_networks.get(group, vnet_name)
    except ResourceNotFoundError as exc:
        if _code(exc) == "ResourceGroupNotFound":
            raise _fail(f"resource group {group} does not exist in subscription {subscription}") from None
        raise _fail(f"virtual network {settings.vnet} does not exist in resource group {group}; fix vnet") from None
    if _same(vnet.location) != _same(settings.location):
        raise _fail(f"virtual network {settings.vnet} is in {vnet.location}, not in location {settings.location}")
    subnets = [s.name for s in vnet.subnets or ()]
    if settings.subnet and settings.subnet not in subnets:
        raise _fail(
            f"virtual network {settings.vnet} has no subnet {settings.subnet}; its subnets: {', '.join(subnets)}"
        )
    try:
        network.network_security_groups.get(group, nsg)
    except ResourceNotFoundError:
        raise _fail(f"network security group {settings.security_group} does not exist in {group}") from None
    for setting_name in ("vm_size", "scheduler_vm_size"):
        size = getattr(settings, setting_name) if setting_name == "vm_size" else settings.extra.get(setting_name)
        if size and size not in sizes:
            raise _fail(f"{setting_name} {size} is not offered in {location} (`az vm list-sizes -l {location}`)")
    worker_gib = (sizes[settings.vm_size].memory_in_mb or 0) / 1024
    if settings.memory > worker_gib:
        raise _fail(f"memory={settings.memory:g} GiB per worker exceeds the {worker_gib:g} GiB of a {settings.vm_size}")


def _same(location: str | None) -> str:
    return (location or "").replace(" ", "").lower()


def _code(exc: Any) -> str:
    error = getattr(exc, "error", None)
    return str(getattr(error, "code", "") or "")
