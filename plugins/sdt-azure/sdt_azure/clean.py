"""`sdt clean azure`: what earlier starts left in the resource group, found by their tags.

A start tags its VMs, network interfaces and public IPs (`sdt_azure.tags`); Azure gives the
OS disk a VM creates no tags, so a disk counts as the start's when its name begins with the
name of one of the start's VMs (dask-cloudprovider names both `dask-<cluster id>-...`).
Untagged resources, and what the user passed in (resource group, virtual network, subnet,
security group), are never touched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from sdt_azure.preflight import subscription_of
from sdt_azure.tags import CLUSTER_TAG, START_TAG, STARTED_TAG
from sdt_core import Leftover, SettingsError

if TYPE_CHECKING:
    from sdt_azure import AzureSettings


def clean_up(settings: AzureSettings, older_than: float | None, dry_run: bool) -> list[Leftover]:
    """Find (and unless `dry_run`, delete) the VMs, disks, network interfaces and public IPs
    tagged by starts older than `older_than` seconds, in that order."""
    from azure.identity import DefaultAzureCredential
    from azure.mgmt.compute import ComputeManagementClient
    from azure.mgmt.network import NetworkManagementClient

    group, subscription = settings.resource_group, subscription_of(settings)
    if not group:
        raise SettingsError("plug 'azure': no resource_group; set resource_group=... (where the starts created VMs)")
    if not subscription:
        raise SettingsError("plug 'azure': no subscription; set subscription_id=... or AZURE_SUBSCRIPTION_ID")
    credential = DefaultAzureCredential()
    compute = ComputeManagementClient(credential, subscription)
    network = NetworkManagementClient(credential, subscription)
    vms = _tagged(compute.virtual_machines.list(group))
    nics = _tagged(network.network_interfaces.list(group))
    ips = _tagged(network.public_ip_addresses.list(group))
    starts = {str((r.tags or {}).get(CLUSTER_TAG, "")): _start(r) for r in [*vms, *nics, *ips]}
    disks = []
    for disk in compute.disks.list_by_resource_group(group):
        owner = next((cid for cid in starts if cid and str(disk.name).startswith(f"dask-{cid}-")), None)
        if owner or START_TAG in (disk.tags or {}):
            disks.append((disk, starts[owner] if owner else _start(disk)))
    found: list[tuple[Leftover, Any]] = [
        *((Leftover("VM", str(r.name), *_start(r)), compute.virtual_machines.begin_delete) for r in vms),
        *((Leftover("disk", str(r.name), *start), compute.disks.begin_delete) for r, start in disks),
        *(
            (Leftover("network interface", str(r.name), *_start(r)), network.network_interfaces.begin_delete)
            for r in nics
        ),
        *((Leftover("public IP", str(r.name), *_start(r)), network.public_ip_addresses.begin_delete) for r in ips),
    ]
    chosen = [(leftover, delete) for leftover, delete in found if leftover.older_than(older_than)]
    if dry_run:
        return [leftover for leftover, _ in chosen]
    return [_delete(leftover, delete, group) for leftover, delete in chosen]


def _tagged(resources: Iterable[Any]) -> list[Any]:
    return [r for r in resources if START_TAG in (r.tags or {})]


def _start(resource: Any) -> tuple[str, str | None]:
    tags = resource.tags or {}
    return str(tags.get(START_TAG, "?")), tags.get(STARTED_TAG)


def _delete(leftover: Leftover, delete: Callable[[str, str], Any], group: str) -> Leftover:
    """Delete and wait; the leftover with the error if Azure refused."""
    import dataclasses

    from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

    try:
        delete(group, leftover.name).wait()
    except ResourceNotFoundError:
        pass  # gone already (a Spot VM evicted with its disk)
    except HttpResponseError as exc:
        code = str(getattr(getattr(exc, "error", None), "code", "") or "error")
        return dataclasses.replace(leftover, error=f"{code}: {str(exc).splitlines()[0][:200]}")
    return leftover
