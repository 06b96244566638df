"""The fargate plug up to its backend boundary: settings, validation, FargateCluster's arguments.

The plug's cluster class (a FargateCluster) is replaced by a recorder here; these tests check
what the plug hands it. test_fargate_aws.py runs the plug against a real AWS API (moto).
"""

from __future__ import annotations

import re

import dask_cloudprovider.aws
import pytest
import sdt_fargate.cluster
from distributed import Client, LocalCluster
from sdt_fargate import FARGATE_TASK_SIZES, FargateClient

from sdt_core import SettingsError, get_plug, list_plugs
from sdt_core.testing import SECRET, RecordingBackend

IMAGE = "example.org/sdt-worker:2.1.5"


@pytest.fixture
def backend(monkeypatch):
    recorder = RecordingBackend(dask_cloudprovider.aws.ECSCluster)
    monkeypatch.setattr(sdt_fargate.cluster, "SdtFargateCluster", recorder)
    return recorder


def make(plug):
    return plug.make_cluster()


def test_discovered_with_the_readme_defaults():
    (fargate,) = [p for p in list_plugs() if p.name == "fargate"]
    assert fargate.status == "ok"
    defaults = {s.name: s.default for s in fargate.settings}
    assert (defaults["workers"], defaults["threads"], defaults["memory"]) == (2, 2, 16.0)
    assert FargateClient().settings.worker_cpu == 4096


def test_the_readme_call_reaches_fargate_cluster_with_converted_units_and_secure_defaults(backend):
    plug = FargateClient(
        workers=3,
        threads=2,
        memory=16,
        image=IMAGE,
        tags={"project": "sdt"},
        vpc="vpc-0123",
        region_name="us-west-2",
        environment={"TOKEN": SECRET},
    )
    make(plug)
    (call,) = backend.calls
    start_id, security, environment = call.pop("start_id"), call.pop("security"), call.pop("environment")
    started = call["tags"].pop("sdt-core-started")  # the start's time, for `sdt clean --older-than`
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", started)
    assert security.require_encryption  # TLS, with a certificate made for this cluster
    tls = {k: v for k, v in environment.items() if k.startswith("DASK_DISTRIBUTED__COMM__")}
    assert environment == {"TOKEN": SECRET, **tls}
    assert tls["DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION"] == "True"
    assert tls["DASK_DISTRIBUTED__COMM__TLS__CA_FILE"] == security.tls_ca_file
    assert tls["DASK_DISTRIBUTED__COMM__TLS__WORKER__KEY"].startswith("-----BEGIN PRIVATE KEY-----")
    assert call == {
        "n_workers": 3,
        "worker_nthreads": 2,
        "worker_mem": 16384,
        "worker_cpu": 4096,
        "scheduler_cpu": 1024,
        "scheduler_mem": 4096,
        "image": IMAGE,
        "region_name": "us-west-2",
        "vpc": "vpc-0123",
        "tags": {"project": "sdt", "sdt-core-start": start_id},
        "scheduler_extra_args": ["--protocol", "tls"],
        "scheduler_task_kwargs": {"startedBy": f"sdt-core/{start_id}"},
        "worker_task_kwargs": {"startedBy": f"sdt-core/{start_id}"},
        "fargate_use_private_ip": True,  # no public IP
        "skip_cleanup": True,
        "start_timeout": 600.0,
        "cleanup_timeout": 300.0,
        "ingress": [],  # the security group admits only the cluster's own tasks
        "keep_logs": False,
        "fargate_spot": False,
        "scheduler_timeout": "0",  # distributed's idle rule, which ignores connected clients, is off
    }


def test_public_exposure_is_explicit_and_warned_about(backend, aws, caplog):
    plug = get_plug("fargate", public_ip=True, ingress=["0.0.0.0/0"], tls=False, image=IMAGE)
    plug.preflight()
    make(plug)
    call = backend.calls[0]
    assert (call["fargate_use_private_ip"], call["ingress"], call.get("security")) == (False, ["0.0.0.0/0"], None)
    assert [r.getMessage() for r in caplog.records if r.name == "sdt_fargate"] == [
        "fargate: every task gets a public IP address (public_ip=True)",
        "fargate: the scheduler's ports 8786-8787 are open to the whole internet (ingress 0.0.0.0/0)",
        "fargate: TLS is off (tls=False): traffic between client, scheduler and workers is unencrypted",
    ]


def test_the_client_connects_to_what_the_backend_returns(monkeypatch, aws):
    in_process = RecordingBackend(
        dask_cloudprovider.aws.ECSCluster,
        lambda: LocalCluster(n_workers=1, processes=False, dashboard_address="127.0.0.1:0"),
    )
    monkeypatch.setattr(sdt_fargate.cluster, "SdtFargateCluster", in_process)
    with get_plug("fargate", workers=1, worker_cpu=1024, memory=2, image=IMAGE) as client:
        assert isinstance(client, Client) and client.submit(sum, [1, 2]).result() == 3
    assert in_process.calls[0]["worker_mem"] == 2048


@pytest.mark.parametrize(("cpu", "memory"), [(256, 0.5), (256, 2), (1024, 8), (4096, 30), (8192, 20), (16384, 120)])
def test_task_sizes_fargate_offers_are_accepted(backend, cpu, memory):
    make(get_plug("fargate", worker_cpu=cpu, memory=memory, image=IMAGE))
    assert backend.calls[0]["worker_mem"] == memory * 1024


@pytest.mark.parametrize(
    ("cpu", "memory", "offered"),
    [
        (256, 1.5, "0.5, 1, 2"),
        (1024, 2.5, "2 to 8 in steps of 1"),
        (1024, 16, "2 to 8 in steps of 1"),
        (8192, 18, "16 to 60 in steps of 4"),
    ],
)
def test_a_task_size_fargate_does_not_offer_is_refused_before_any_aws_call(backend, cpu, memory, offered):
    with pytest.raises(SettingsError) as err:
        get_plug("fargate", worker_cpu=cpu, memory=memory, image=IMAGE)
    assert str(err.value) == (
        f"plug 'fargate': Fargate offers no worker task of {cpu / 1024:g} vCPU with {memory:g} GiB; "
        f"at {cpu / 1024:g} vCPU memory is {offered} GiB"
    )
    assert backend.calls == []


def test_the_scheduler_task_size_is_checked_too(backend):
    with pytest.raises(SettingsError, match="no scheduler task of 1 vCPU with 16 GiB"):
        get_plug("fargate", scheduler_mem=16384)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"worker_cpu": 1000}, "worker_cpu must be one of 256, 512, 1024, 2048, 4096, 8192, 16384, got 1000"),
        ({"imgae": IMAGE}, "has no setting 'imgae'; did you mean 'image'?"),
        ({"worker_mem": 16384}, "worker_mem is set from the setting 'memory'; give memory=... instead"),
        ({"tags": "project=sdt"}, "tags must be a mapping of str to str, got the string 'project=sdt'"),
        ({"fargate_use_private_ip": False}, "fargate_use_private_ip is set from the setting 'public_ip'"),
        ({"security": False}, "security is set from the setting 'tls'; give tls=... instead"),
        ({"ingress": ["everywhere"]}, "ingress entry 'everywhere' is not an address range; give CIDRs like"),
    ],
)
def test_bad_settings_give_one_line(backend, values, message):
    with pytest.raises(SettingsError, match=message):
        get_plug("fargate", **values)
    assert backend.calls == []


def test_secrets_are_masked_in_the_repr():
    plug = get_plug("fargate", environment={"TOKEN": SECRET}, aws_secret_access_key=SECRET)
    assert SECRET not in repr(plug) and "'TOKEN': '***'" in repr(plug)


def test_every_task_size_table_entry_is_a_fargate_cpu_value():
    assert sorted(FARGATE_TASK_SIZES) == [256, 512, 1024, 2048, 4096, 8192, 16384]
