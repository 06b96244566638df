"""The azure plug up to its backend boundary: settings, validation, AzureVMCluster's arguments.

Azure's compute API has no local stand-in, so the plug's subclass of dask-cloudprovider's
`AzureVMCluster` is replaced by a recorder here: these tests check exactly what the plug hands it.
"""

from __future__ import annotations

import pytest
import sdt_azure.cluster
from sdt_azure import AzureClient

from sdt_core import SettingsError, get_plug, list_plugs
from sdt_core.testing import SECRET, RecordingBackend


@pytest.fixture
def backend(monkeypatch):
    recorder = RecordingBackend(sdt_azure.cluster.SdtAzureVMCluster)
    monkeypatch.setattr(sdt_azure.cluster, "SdtAzureVMCluster", recorder)
    return recorder


def make(plug):
    return plug.make_cluster()


def test_discovered_with_the_readme_defaults():
    (azure,) = [p for p in list_plugs() if p.name == "azure"]
    assert azure.status == "ok"
    defaults = {s.name: s.default for s in azure.settings}
    assert (defaults["workers"], defaults["threads"], defaults["memory"]) == (5, 2, 15.63)
    assert defaults["public_ingress"] is False


def test_the_readme_call_reaches_azure_vm_cluster(backend):
    plug = AzureClient(
        workers=3,
        threads=2,
        memory=16,
        resource_group="rg",
        vnet="vnet",
        security_group="nsg",
        docker_image="example.org/sdt:1",
        location="westus2",
        vm_size="Standard_D4s_v3",
        public_ingress=True,
        disk_size=30,
        scheduler_vm_size="Standard_D2s_v3",
    )
    make(plug)
    (call,) = backend.calls
    tags = call.pop("start_tags")  # the start's id and time, on every VM, NIC and public IP
    assert sorted(tags) == ["sdt-core-start", "sdt-core-started"]
    assert call == {
        "n_workers": 3,
        "worker_options": {"nthreads": 2, "memory_limit": "16.00GiB"},
        "security": True,  # VMCluster makes a temporary TLS certificate
        "subscription_id": None,
        "subnet": None,
        "resource_group": "rg",
        "location": "westus2",
        "vnet": "vnet",
        "security_group": "nsg",
        "vm_size": "Standard_D4s_v3",
        "docker_image": "example.org/sdt:1",
        "public_ingress": True,
        "disk_size": 30,
        "env_vars": {},
        "scheduler_vm_size": "Standard_D2s_v3",
        "scheduler_options": {},  # the idle rule is set only by a start through sdt-core (below)
        "spot": False,
    }


def test_a_users_worker_options_are_merged_under_threads_and_memory(backend):
    make(get_plug("azure", threads=4, memory=8, worker_options={"nthreads": 99, "death_timeout": 60}))
    assert backend.calls[0]["worker_options"] == {
        "nthreads": 4,
        "memory_limit": "8.00GiB",
        "death_timeout": 60,
    }


def test_tls_is_on_and_public_ingress_off_unless_asked(backend):
    make(get_plug("azure"))
    assert (backend.calls[0]["security"], backend.calls[0]["public_ingress"]) == (True, False)
    make(get_plug("azure", tls=False))
    assert backend.calls[1]["security"] is False


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"workers": 0}, "workers must be >= 1, got 0"),
        ({"disk_size": 2048}, "disk_size must be <= 1023, got 2048"),
        ({"public_ingress": "yes"}, "public_ingress must be True or False, got the string 'yes'"),
        ({"vm_sise": "x"}, "has no setting 'vm_sise'; did you mean 'vm_size'?"),
        ({"security": False}, "security is set from the setting 'tls'; give tls=... instead"),
    ],
)
def test_bad_settings_give_one_line(backend, values, message):
    with pytest.raises(SettingsError, match=message):
        get_plug("azure", **values)
    assert backend.calls == []


def test_secrets_are_masked_in_the_repr():
    plug = get_plug("azure", env_vars={"AZURE_CLIENT_SECRET": SECRET})
    assert SECRET not in repr(plug)
