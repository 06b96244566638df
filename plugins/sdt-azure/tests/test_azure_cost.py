"""What an Azure cluster costs beyond its work: `sdt clean azure`, Spot workers with their
pay-as-you-go fallback, idle shutdown on the scheduler VM.

Azure has no local API server (as moto is for AWS): the SDK clients the plug calls are
replaced by fakes of one resource group that keep what exists and record what is created
and deleted, answering with the SDK's own exceptions.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from types import SimpleNamespace

import azure.identity
import azure.mgmt.compute
import azure.mgmt.network
import dask.config
import pytest
import sdt_azure.cluster
from azure.core.exceptions import HttpResponseError, ODataV4Format
from click.testing import CliRunner
from distributed import Scheduler
from distributed.utils import cli_keywords
from sdt_azure.cluster import SpotAzureVMWorker

from sdt_core import get_plug
from sdt_core.cli import cli, main
from sdt_core.testing import RecordingBackend

KINDS = ("vms", "disks", "nics", "ips")


def ago(hours: float) -> str:
    when = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=hours)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


class ResourceGroup:
    """The resources of one resource group, by kind and name (their tags as values)."""

    def __init__(self) -> None:
        self.resources: dict[str, dict[str, dict[str, str]]] = {kind: {} for kind in KINDS}
        self.deleted: list[str] = []

    def add(self, kind: str, name: str, **tags: str) -> None:
        self.resources[kind][name] = tags

    def names(self) -> dict[str, list[str]]:
        return {kind: sorted(names) for kind, names in self.resources.items()}

    def _list(self, kind: str):
        return lambda group: [SimpleNamespace(name=n, tags=dict(t)) for n, t in self.resources[kind].items()]

    def _delete(self, kind: str):
        def begin_delete(group: str, name: str) -> SimpleNamespace:
            del self.resources[kind][name]
            self.deleted.append(name)
            return SimpleNamespace(wait=lambda: None)

        return begin_delete

    def compute(self, credential: object, subscription: str) -> SimpleNamespace:
        return SimpleNamespace(
            virtual_machines=SimpleNamespace(list=self._list("vms"), begin_delete=self._delete("vms")),
            disks=SimpleNamespace(list_by_resource_group=self._list("disks"), begin_delete=self._delete("disks")),
        )

    def network(self, credential: object, subscription: str) -> SimpleNamespace:
        return SimpleNamespace(
            network_interfaces=SimpleNamespace(list=self._list("nics"), begin_delete=self._delete("nics")),
            public_ip_addresses=SimpleNamespace(list=self._list("ips"), begin_delete=self._delete("ips")),
        )


@pytest.fixture
def group(monkeypatch) -> ResourceGroup:
    fake = ResourceGroup()
    monkeypatch.setattr(azure.identity, "DefaultAzureCredential", lambda: object())
    monkeypatch.setattr(azure.mgmt.compute, "ComputeManagementClient", fake.compute)
    monkeypatch.setattr(azure.mgmt.network, "NetworkManagementClient", fake.network)
    return fake


def clean(*args: str):
    result = CliRunner().invoke(cli, ["clean", "azure", "--resource-group", "rg", "--subscription-id", "sub", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_clean_deletes_what_tagged_starts_left_by_age_and_nothing_else(group):
    old, new = (
        {"sdt-core-start": "a1", "sdt-core-started": ago(3)},
        {"sdt-core-start": "b2", "sdt-core-started": ago(0)},
    )
    for tags, cid in ((old, "aaaa"), (new, "bbbb")):
        group.add("vms", f"dask-{cid}-scheduler", **tags, **{"cluster-id": cid})
        group.add("nics", f"dask-cloudprovider-nic-{cid}", **tags, **{"cluster-id": cid})
        group.add("disks", f"dask-{cid}-scheduler_OsDisk_1_0f3e")  # Azure tags no OS disk
    group.add("ips", "dask-cloudprovider-nic-aaaa", **old, **{"cluster-id": "aaaa"})
    group.add("disks", "dask-aaaa-worker-1f2e_OsDisk_1_77aa")  # its VM is gone (evicted), its NIC is not
    # The user's own, and a dask-cloudprovider cluster sdt did not start: untagged, never touched.
    group.add("vms", "my-vm")
    group.add("disks", "my-vm_OsDisk_1_1234")
    group.add("nics", "my-nic", team="pv")
    group.add("vms", "dask-cccc-scheduler", **{"cluster-id": "cccc", "creator": "dask-cloudprovider"})
    group.add("disks", "dask-cccc-scheduler_OsDisk_1_5678")
    untouched = {
        "vms": ["dask-cccc-scheduler", "my-vm"],
        "disks": ["dask-cccc-scheduler_OsDisk_1_5678", "my-vm_OsDisk_1_1234"],
        "nics": ["my-nic"],
        "ips": [],
    }

    listed = clean("--dry-run")
    assert group.deleted == []
    assert listed.splitlines()[-1] == "8 resources of 2 starts: would be deleted (--dry-run: nothing was)."
    assert clean("--older-than", "2h").splitlines()[-1] == "Deleted 5 resources of 1 start older than 2 h."
    assert sorted(group.deleted) == sorted([
        "dask-aaaa-scheduler", "dask-aaaa-scheduler_OsDisk_1_0f3e", "dask-aaaa-worker-1f2e_OsDisk_1_77aa",
        "dask-cloudprovider-nic-aaaa", "dask-cloudprovider-nic-aaaa",
    ])  # fmt: skip
    assert group.deleted.index("dask-aaaa-scheduler") < group.deleted.index("dask-aaaa-scheduler_OsDisk_1_0f3e")
    assert clean().splitlines()[-1] == "Deleted 3 resources of 1 start."
    assert group.names() == untouched
    assert clean() == "Nothing left behind by starts of plug 'azure'.\n"


def test_clean_without_a_resource_group_is_one_line(group, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["clean", "azure", "--subscription-id", "sub"])
    assert exited.value.code == 2
    assert capsys.readouterr().err == (
        "sdt: error: plug 'azure': no resource_group; set resource_group=... (where the starts created VMs)\n"
    )


class Compute:
    """The VM calls of a worker's creation: a Spot VM fails for lack of capacity when `short`."""

    def __init__(self, short: bool) -> None:
        self.short = short
        self.created: list[dict] = []

    def begin_create_or_update(self, group: str, name: str, parameters: dict) -> SimpleNamespace:
        if self.short and parameters.get("priority") == "Spot":
            error = HttpResponseError(message="(SkuNotAvailable) The requested tier is currently not available")
            error.error = ODataV4Format({"code": "SkuNotAvailable", "message": "not available"})
            raise error
        self.created.append(parameters)
        return SimpleNamespace(wait=lambda: None)


def create_worker(short: bool) -> list[dict]:
    compute = Compute(short)
    nic = SimpleNamespace(id="nic-id", name="nic", ip_configurations=[SimpleNamespace(private_ip_address="10.0.0.5")])
    network = SimpleNamespace(
        network_security_groups=SimpleNamespace(get=lambda group, name: SimpleNamespace(id="nsg-id")),
        network_interfaces=SimpleNamespace(
            begin_create_or_update=lambda group, name, parameters: SimpleNamespace(result=lambda: nic),
            get=lambda group, name: nic,
        ),
    )

    async def call_async(f, *args, **kwargs):
        return f(*args, **kwargs)

    cluster = SimpleNamespace(
        uuid="abcd", resource_group="rg", network_client=network, debug=False, call_async=call_async,
        compute_client=SimpleNamespace(virtual_machines=compute) , get_tags=lambda: {"sdt-core-start": "a1"},
        render_process_cloud_init=lambda process: "#cloud-config", _log=lambda message: None,
    )  # fmt: skip
    compute.get = lambda group, name: SimpleNamespace(name=name)
    worker = SpotAzureVMWorker(
        "tls://10.0.0.4:8786", cluster=cluster, config=None, location="eastus", vnet="vnet", subnet="subnet-id",
        security_group="nsg", vm_size="Standard_D4s_v3", docker_image="example.org/sdt:1", env_vars={},
        worker_class="dask.distributed.Nanny", worker_options={}, extra_vm_options={"license_type": "x"},
    )  # fmt: skip
    assert asyncio.run(worker.create_vm()) == ("10.0.0.5", None)
    return compute.created


def test_a_spot_worker_is_a_spot_vm_deleted_on_eviction():
    (vm,) = create_worker(short=False)
    assert (vm["priority"], vm["eviction_policy"], vm["billing_profile"]) == ("Spot", "Delete", {"max_price": -1})
    assert vm["license_type"] == "x"  # the user's own extra_vm_options are kept


def test_a_worker_spot_has_no_capacity_for_runs_pay_as_you_go_and_says_so(caplog):
    with caplog.at_level(logging.WARNING, logger="sdt_azure"):
        (vm,) = create_worker(short=True)
    assert "priority" not in vm and "eviction_policy" not in vm and vm["license_type"] == "x"
    assert caplog.messages == [
        "azure: Spot has no capacity for worker dask-abcd-worker-" + caplog.messages[0].split("worker-")[1]
    ]
    assert caplog.messages[0].endswith("(SkuNotAvailable); it runs pay-as-you-go")


def test_the_idle_rule_reaches_the_scheduler_vms_command(monkeypatch):
    recorder = RecordingBackend(sdt_azure.cluster.SdtAzureVMCluster)
    monkeypatch.setattr(sdt_azure.cluster, "SdtAzureVMCluster", recorder)
    plug = get_plug("azure", location="eastus", spot=True)
    assert plug.plan().prices is not None  # priced: the idle rule is on by default (20 minutes)
    with dask.config.set({"sdt.idle-timeout": 1200}):  # as sdt-core sets it for the start
        plug.make_cluster()
    (call,) = recorder.calls
    assert call["env_vars"] == {"DASK_SDT__IDLE_TIMEOUT": "1200"}
    # dask-cloudprovider turns scheduler_options into the scheduler VM's command line:
    assert cli_keywords(call["scheduler_options"], cls=Scheduler) == ["--preload", "sdt_core.plugs.idle"]
    assert call["spot"] is True


def test_plan_shows_spot_beside_pay_as_you_go_and_a_spot_cost_it_has_no_price_for_as_at_most():
    from sdt_azure.prices import VM_SIZES

    result = CliRunner().invoke(cli, ["plan", "azure", "--workers", "10", "--location", "eastus", "--spot"])
    price = VM_SIZES["Standard_D4s_v3"][2]
    workers = "  workers: 10 x Standard_D4s_v3, 4 vCPU, 16 GiB"
    assert f"{workers} (on spot: no spot price in the table; on-demand {price:.4f}/h)" in result.output.splitlines()
    assert f"Estimated cost: unknown (no spot price for Standard_D4s_v3), at most {11 * price:.2f} USD per hour" in (
        result.output
    )
