"""The azure plug's preflight and secure defaults, tested at the Azure SDK boundary.

Azure has no local API server (as moto is for AWS), so the three SDK classes the plug calls,
`DefaultAzureCredential`, `NetworkManagementClient` and `ComputeManagementClient`, are
replaced by fakes of one subscription; they raise the SDK's own exceptions. The fakes have no
create or delete methods: a preflight that tried to create something would fail here.
"""

from __future__ import annotations

from types import SimpleNamespace

import azure.identity
import azure.mgmt.compute
import azure.mgmt.network
import pytest
import sdt_azure.cluster
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ODataV4Format, ResourceNotFoundError

from sdt_core import SettingsError, get_plug
from sdt_core.testing import SECRET, RecordingBackend

GOOD = {
    "subscription_id": "sub-1",
    "resource_group": "rg",
    "location": "eastus",
    "vnet": "vnet",
    "security_group": "nsg",
    "docker_image": "example.org/sdt:1",
    "workers": 2,
    "memory": 15,
}


def not_found(code: str) -> ResourceNotFoundError:
    error = ResourceNotFoundError(message=f"({code}) not found")
    error.error = ODataV4Format({"code": code, "message": "not found"})
    return error


class Subscription:
    """What exists in the fake subscription."""

    def __init__(self) -> None:
        self.logged_in = True
        self.groups = {"rg": {"vnets": {"vnet": ("East US", ["default"])}, "nsgs": {"nsg"}}}
        self.sizes = {"eastus": {"Standard_D4s_v3": 16384, "Standard_D2s_v3": 8192}}

    def credential(self) -> SimpleNamespace:
        def get_token(*scopes: str) -> object:
            if not self.logged_in:
                raise ClientAuthenticationError("DefaultAzureCredential failed to retrieve a token")
            return SimpleNamespace(token="t", expires_on=0)

        return SimpleNamespace(get_token=get_token)

    def network(self, credential: object, subscription: str) -> SimpleNamespace:
        def group(name: str) -> dict:
            if name not in self.groups:
                raise not_found("ResourceGroupNotFound")
            return self.groups[name]

        def get_vnet(rg: str, name: str) -> SimpleNamespace:
            vnets = group(rg)["vnets"]
            if name not in vnets:
                raise not_found("ResourceNotFound")
            location, subnets = vnets[name]
            return SimpleNamespace(location=location, subnets=[SimpleNamespace(name=s) for s in subnets])

        def get_nsg(rg: str, name: str) -> SimpleNamespace:
            if name not in group(rg)["nsgs"]:
                raise not_found("ResourceNotFound")
            return SimpleNamespace(name=name)

        return SimpleNamespace(
            virtual_networks=SimpleNamespace(get=get_vnet), network_security_groups=SimpleNamespace(get=get_nsg)
        )

    def compute(self, credential: object, subscription: str) -> SimpleNamespace:
        def list_sizes(location: str) -> list[SimpleNamespace]:
            if location not in self.sizes:
                raise HttpResponseError(message=f"No registered resource provider found for location '{location}'")
            return [SimpleNamespace(name=n, memory_in_mb=m) for n, m in self.sizes[location].items()]

        return SimpleNamespace(virtual_machine_sizes=SimpleNamespace(list=list_sizes))


@pytest.fixture
def subscription(monkeypatch) -> Subscription:
    fake = Subscription()
    monkeypatch.setattr(azure.identity, "DefaultAzureCredential", fake.credential)
    monkeypatch.setattr(azure.mgmt.network, "NetworkManagementClient", fake.network)
    monkeypatch.setattr(azure.mgmt.compute, "ComputeManagementClient", fake.compute)
    monkeypatch.delenv("AZURE_SUBSCRIPTION_ID", raising=False)
    return fake


@pytest.fixture
def backend(monkeypatch) -> RecordingBackend:
    recorder = RecordingBackend(sdt_azure.cluster.SdtAzureVMCluster)
    monkeypatch.setattr(sdt_azure.cluster, "SdtAzureVMCluster", recorder)
    return recorder


def start(**values: object) -> None:
    """What `init_client()` does up to the backend: the preflight, then the cluster."""
    plug = get_plug("azure", **(GOOD | values))
    plug.preflight()
    plug.make_cluster()


def test_a_good_start_passes_preflight_then_reaches_the_backend_secure(subscription, backend):
    start(env_vars={"TOKEN": SECRET})
    (call,) = backend.calls
    assert (call["security"], call["public_ingress"], call["subscription_id"]) == (True, False, "sub-1")


@pytest.mark.parametrize(
    ("change", "values", "message"),
    [
        (
            None,
            {"docker_image": None},
            "no docker_image; build one with `sdt image DIR`, push it, and set docker_image=",
        ),
        (None, {"location": None}, "no location; set location=... (`sdt info azure`)"),
        (None, {"subscription_id": None}, "no subscription; set subscription_id=... or AZURE_SUBSCRIPTION_ID"),
        ("logged_out", {}, "no Azure credentials found; run `az login`, or set AZURE_CLIENT_ID, AZURE_TENANT_ID"),
        (None, {"resource_group": "other"}, "resource group other does not exist in subscription sub-1"),
        (None, {"vnet": "other"}, "virtual network other does not exist in resource group rg; fix vnet"),
        ("vnet_elsewhere", {}, "virtual network vnet is in West Europe, not in location eastus"),
        (None, {"subnet": "other"}, "virtual network vnet has no subnet other; its subnets: default"),
        (None, {"security_group": "other"}, "network security group other does not exist in rg"),
        (None, {"location": "mars"}, "location mars is not an Azure location"),
        (None, {"vm_size": "Standard_X1"}, "vm_size Standard_X1 is not offered in eastus"),
        (None, {"scheduler_vm_size": "Standard_X1"}, "scheduler_vm_size Standard_X1 is not offered in eastus"),
        (None, {"memory": 20}, "memory=20 GiB per worker exceeds the 16 GiB of a Standard_D4s_v3"),
    ],
)
def test_each_preflight_failure_is_one_line_and_starts_nothing(subscription, backend, change, values, message):
    if change == "logged_out":
        subscription.logged_in = False
    if change == "vnet_elsewhere":
        subscription.groups["rg"]["vnets"]["vnet"] = ("West Europe", ["default"])
    with pytest.raises(SettingsError) as err:
        start(**values)
    assert str(err.value).startswith(f"plug 'azure': {message}")
    assert "\n" not in str(err.value)
    assert backend.calls == []


def test_public_ingress_and_tls_off_are_warned_about(subscription, backend, caplog):
    start(public_ingress=True, tls=False)
    assert [r.getMessage() for r in caplog.records if r.name == "sdt_azure"] == [
        "azure: the scheduler gets a public IP address open to the internet (public_ingress=True)",
        "azure: TLS is off (tls=False): traffic between client, scheduler and workers is unencrypted",
    ]
    assert (backend.calls[0]["public_ingress"], backend.calls[0]["security"]) == (True, False)


def test_plan_prints_the_vms_and_their_cost_and_calls_no_azure_api(monkeypatch):
    from click.testing import CliRunner
    from sdt_azure.prices import PRICES, VM_SIZES

    from sdt_core.cli import cli

    def no_call(*args: object, **kwargs: object) -> None:
        raise AssertionError("sdt plan called the Azure API")

    for module, name in ((azure.identity, "DefaultAzureCredential"), (azure.mgmt.network, "NetworkManagementClient"),
                         (azure.mgmt.compute, "ComputeManagementClient")):  # fmt: skip
        monkeypatch.setattr(module, name, no_call)
    args = ["plan", "azure", "--workers", "10", "--memory", "16", "--threads", "4", "--location", "eastus"]
    args += ["--docker-image", "example.org/sdt:1", "--vnet", "vnet", "--security-group", "nsg"]
    args += ["--env-vars", f'{{"TOKEN": "{SECRET}"}}']
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    vcpu, memory, price = VM_SIZES["Standard_D4s_v3"]
    assert result.output.splitlines()[:7] == [
        "Plan for plug 'azure' (nothing has been created)",
        f"  scheduler: 1 x Standard_D4s_v3, {vcpu} vCPU, {memory:g} GiB ({price:.4f}/h each)",
        f"  workers: 10 x Standard_D4s_v3, {vcpu} vCPU, {memory:g} GiB ({price:.4f}/h each)",
        "  image: example.org/sdt:1",
        "  region/location: eastus",
        "  network: private IPs only, in virtual network vnet with security group nsg",
        "  TLS: on",
    ]
    assert (
        f"Estimated cost: {11 * price:.2f} USD per hour, from prices for eastus taken on {PRICES.taken}"
        in result.output
    )
    assert "1 environment variable passed to the VMs (values hidden)" in result.output
    assert SECRET not in result.output
