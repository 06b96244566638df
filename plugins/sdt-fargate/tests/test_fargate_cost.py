"""What a Fargate cluster costs beyond its work, against moto's AWS API in server mode (the
`aws` fixture): `sdt clean` after a killed client, idle shutdown on the scheduler task, and
workers on Fargate Spot with their on-demand fallback.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from distributed import LocalCluster

from sdt_core import ClusterStartError, get_plug

IMAGE = "example.org/sdt-worker:1"
SMALL = {"workers": 1, "worker_cpu": 1024, "memory": 2, "image": IMAGE}
SDT = Path(sys.executable).with_name("sdt")


def sdt(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SDT), *args], capture_output=True, text=True, timeout=300)


@pytest.fixture
def scheduler():
    """A real scheduler for the cluster to connect to: Fargate tasks run nothing under moto."""
    with LocalCluster(
        n_workers=0, processes=False, protocol="tcp", host="127.0.0.1", dashboard_address="127.0.0.1:0"
    ) as local:
        yield local.scheduler_address


def test_clean_deletes_what_a_killed_up_left_and_nothing_else(inventory, scheduler):
    ec2, ecs = boto3.client("ec2"), boto3.client("ecs")
    ecs.create_cluster(clusterName="mine")  # the user's, untagged: never touched
    ec2.create_security_group(GroupName="mine", Description="mine")
    before = inventory()
    command = [str(SDT), "up", "fargate", "--workers", "1", "--worker-cpu", "1024", "--memory", "2"]
    command += ["--image", IMAGE, "--no-tls", "--spot", "--set", f"scheduler_address={scheduler}"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as up:
        try:
            lines = [up.stdout.readline() for _ in range(4)]
            assert lines[3] == "Running; Ctrl-C or SIGTERM stops it.\n", (lines, up.stderr.read())
            up.send_signal(signal.SIGKILL)  # no clean-up runs
            up.wait(timeout=30)
        finally:
            up.kill()
    left = {kind: sorted(set(names) - set(before[kind])) for kind, names in inventory().items()}
    assert {kind: len(names) for kind, names in left.items() if names} == {
        "ecs clusters": 1,
        "running tasks": 1,
        "task definitions": 2,
        "iam roles": 2,
        "security groups": 1,
        "log groups": 1,
    }
    (task,) = ecs.describe_tasks(cluster=left["ecs clusters"][0], tasks=left["running tasks"])["tasks"]
    assert task["capacityProviderName"] == "FARGATE_SPOT"  # a worker, on Spot

    spared = sdt("clean", "fargate", "--older-than", "1h")
    assert (spared.returncode, spared.stdout) == (
        0,
        "Nothing left behind by starts of plug 'fargate' older than 1 h.\n",
    )
    listed = sdt("clean", "fargate", "--dry-run")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines()[-1] == "8 resources of 1 start: would be deleted (--dry-run: nothing was)."
    assert inventory() != before
    for kind, names in left.items():
        for name in names:
            assert name in listed.stdout, (kind, name)

    cleaned = sdt("clean", "fargate")
    assert cleaned.returncode == 0, cleaned.stderr
    assert cleaned.stdout.splitlines()[-1] == "Deleted 8 resources of 1 start."
    assert inventory() == before
    assert sdt("clean", "fargate").stdout == "Nothing left behind by starts of plug 'fargate'.\n"


def test_a_log_group_kept_at_close_is_no_longer_the_starts_and_clean_leaves_it(inventory, scheduler):
    before = inventory()
    with get_plug("fargate", **SMALL, tls=False, keep_logs=True, scheduler_address=scheduler):
        pass
    kept = {kind: sorted(set(names) - set(before[kind])) for kind, names in inventory().items()}
    assert {kind: len(names) for kind, names in kept.items() if names} == {"log groups": 1}
    (group,) = kept["log groups"]
    tags = boto3.client("logs").list_tags_log_group(logGroupName=group)["tags"]
    assert "sdt-core-start" not in tags and "sdt-core-started" in tags  # no longer the start's to delete
    assert sdt("clean", "fargate").stdout == "Nothing left behind by starts of plug 'fargate'.\n"


def test_the_workers_of_a_start_retire_gracefully_when_fargate_stops_their_task(inventory, scheduler):
    """Fargate's SIGTERM reaches `dask worker`'s nanny (tests/test_scaling.py shows what the plugin does there)."""
    with get_plug("fargate", **SMALL, tls=False, scheduler_address=scheduler) as client:
        registered = client.run_on_scheduler(
            lambda dask_scheduler: (sorted(dask_scheduler.worker_plugins), sorted(dask_scheduler.nanny_plugins))
        )
    workers, nannies = registered
    assert "sdt-graceful-stop" in workers and nannies == ["sdt-graceful-stop-nanny"]  # beside distributed's own


def test_the_idle_rule_and_spot_reach_the_scheduler_task(inventory, monkeypatch):
    """The start runs its scheduler task on moto, which runs no container: the task's ECS record
    is kept and the start ends there (the cluster would connect to a made-up address)."""
    from dask_cloudprovider.aws import ecs

    tasks = []
    run_task = ecs.Task.start

    async def run_then_stop(self):
        await run_task(self)
        tasks.append(self.task)
        raise RuntimeError("the scheduler task was started")

    monkeypatch.setattr(ecs.Scheduler, "start", run_then_stop)
    before = inventory()
    with pytest.raises(ClusterStartError, match="the scheduler task was started; everything it created was deleted"):
        get_plug("fargate", **SMALL, spot=True, tls=False).init_client()
    (task,) = tasks
    (container,) = task["overrides"]["containerOverrides"]
    command, environment = container["command"], {e["name"]: e["value"] for e in container["environment"]}
    assert command[:3] == ["dask-scheduler", "--idle-timeout", "0"]  # distributed's own rule off: it ignores clients
    assert command[command.index("--preload") + 1] == "sdt_core.plugs.idle"
    assert environment["DASK_SDT__IDLE_TIMEOUT"] == "1200"  # the default of a priced plug
    assert task["capacityProviderName"] == "FARGATE"  # the scheduler is never on Spot
    assert inventory() == before


def test_plan_shows_spot_and_on_demand_prices_side_by_side_and_costs_spot_with_spot():
    from sdt_fargate.prices import RATES, SPOT_RATES

    command = ["plan", "fargate", "--workers", "10", "--memory", "16", "--threads", "4", "--region-name", "us-east-1"]
    worker = 4 * RATES["us-east-1"][0] + 16 * RATES["us-east-1"][1]
    spot_worker = 4 * SPOT_RATES["us-east-1"][0] + 16 * SPOT_RATES["us-east-1"][1]
    scheduler = 1 * RATES["us-east-1"][0] + 4 * RATES["us-east-1"][1]
    on_demand = sdt(*command)
    assert f"  workers: 10 x Fargate task, 4 vCPU, 16 GiB ({worker:.4f}/h each; on spot {spot_worker:.4f}/h)" in (
        on_demand.stdout.splitlines()
    )
    spot = sdt(*command, "--spot")
    assert (
        f"  workers: 10 x Fargate task, 4 vCPU, 16 GiB (on spot: {spot_worker:.4f}/h each; on-demand {worker:.4f}/h)"
        in (spot.stdout.splitlines())
    )
    assert f"Estimated cost: {10 * spot_worker + scheduler:.2f} USD per hour with workers on spot" in spot.stdout
    as_json = json.loads(sdt(*command, "--spot", "--json").stdout)
    assert as_json["cost_per_hour"] == pytest.approx(10 * spot_worker + scheduler)
    assert as_json["on_demand_cost_per_hour"] == pytest.approx(10 * worker + scheduler)


def test_plan_without_a_region_prices_the_region_boto3_would_use_and_says_where_it_came_from(tmp_path):
    import os

    from sdt_fargate.prices import RATES

    profile = tmp_path / "config"
    profile.write_text("[default]\nregion = us-east-2\n")

    def plan(**env: str) -> tuple[str, str]:
        """The plan's region line and cost line, with only `env` of AWS's settings."""
        clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        clean |= {"AWS_CONFIG_FILE": str(tmp_path / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")}
        result = subprocess.run(
            [str(SDT), "plan", "fargate"], capture_output=True, text=True, timeout=120, env=clean | env
        )
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        region = next(line for line in lines if line.startswith("  region/location: "))
        return region.removeprefix("  region/location: "), next(line for line in lines if line.startswith("Estimated"))

    def cost(region: str) -> str:  # the default plan: 2 workers of 4 vCPU, 16 GiB; a scheduler of 1 vCPU, 4 GiB
        per_vcpu, per_gb = RATES[region]
        return f"Estimated cost: {2 * (4 * per_vcpu + 16 * per_gb) + per_vcpu + 4 * per_gb:.2f} USD per hour"

    where, estimate = plan(AWS_DEFAULT_REGION="us-west-2")
    assert where == "us-west-2 (from AWS_DEFAULT_REGION, as boto3 uses it)"
    assert estimate.startswith(cost("us-west-2"))
    where, estimate = plan(AWS_CONFIG_FILE=str(profile))
    assert where == "us-east-2 (from AWS profile 'default', as boto3 uses it)"
    assert estimate.startswith(cost("us-east-2"))
    where, estimate = plan()
    assert where == (
        "not set: priced as us-east-1; a start needs it (no AWS region; set region_name=... or AWS_DEFAULT_REGION)"
    )
    assert estimate.startswith(cost("us-east-1"))


class NoSpotCapacity:
    """A real ECS client (moto's) except that Fargate Spot has no capacity: its `run_task` on
    FARGATE_SPOT answers as AWS does then, with no task and a failure (moto cannot be made to
    refuse Spot capacity: its run_task places every Fargate task)."""

    def __init__(self, ecs):
        self.ecs = ecs

    async def run_task(self, **kwargs):
        if kwargs.get("capacityProviderStrategy") == [{"capacityProvider": "FARGATE_SPOT"}]:
            reason = "Capacity is unavailable at this time. Please try again later or in a different availability zone"
            return {"tasks": [], "failures": [{"arn": kwargs["taskDefinition"], "reason": reason}]}
        return await self.ecs.run_task(**kwargs)


def test_a_worker_spot_has_no_capacity_for_runs_on_demand_and_says_so(inventory, caplog):
    from aiobotocore.session import get_session
    from sdt_fargate.spot import SpotFallback

    ecs = boto3.client("ecs")
    cluster = ecs.create_cluster(clusterName="spot", capacityProviders=["FARGATE", "FARGATE_SPOT"])["cluster"]
    definition = ecs.register_task_definition(
        family="spot", networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="1024", memory="2048",
        containerDefinitions=[{"name": "dask-worker", "image": IMAGE, "cpu": 1024, "memory": 2048}],
    )["taskDefinition"]  # fmt: skip
    subnet = boto3.client("ec2").describe_subnets()["Subnets"][0]["SubnetId"]
    group = boto3.client("ec2").describe_security_groups()["SecurityGroups"][0]["GroupId"]
    run = {
        "cluster": cluster["clusterArn"],
        "taskDefinition": definition["taskDefinitionArn"],
        "capacityProviderStrategy": [{"capacityProvider": "FARGATE_SPOT"}],
        "networkConfiguration": {"awsvpcConfiguration": {"subnets": [subnet], "securityGroups": [group]}},
    }

    async def run_tasks():
        async with get_session().create_client("ecs") as real:
            on_spot = await SpotFallback(real, "0").run_task(**run)
            with caplog.at_level(logging.WARNING, logger="sdt_fargate"):
                fallen_back = await SpotFallback(NoSpotCapacity(real), "1").run_task(**run)
            return on_spot, fallen_back

    on_spot, fallen_back = asyncio.run(run_tasks())
    assert [t["capacityProviderName"] for t in on_spot["tasks"]] == ["FARGATE_SPOT"]
    assert [t["capacityProviderName"] for t in fallen_back["tasks"]] == ["FARGATE"]
    running = ecs.describe_tasks(cluster=cluster["clusterArn"], tasks=[fallen_back["tasks"][0]["taskArn"]])["tasks"]
    assert running[0]["capacityProviderName"] == "FARGATE"  # moto has it, on-demand
    assert caplog.messages == [
        "fargate: Fargate Spot has no capacity for worker 1 (Capacity is unavailable at this time. Please try "
        "again later or in a different availability zone); it runs on-demand"
    ]
