"""The fargate plug against a real AWS API: moto in server mode on 127.0.0.1, reached through
AWS_ENDPOINT_URL (the `aws` fixture); boto is not patched.

Fargate tasks do not run a real scheduler under moto, so each start is given a scheduler
address (`scheduler_address`, a FargateCluster parameter): a local socket that never answers,
or a real local scheduler. Everything else (cluster, roles, task definitions, security group,
log group, worker tasks) is created through the AWS API, and listed there before and after.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest
from distributed import LocalCluster

from sdt_core import ClusterStartError, get_plug, run
from sdt_core.testing import SECRET

IMAGE = "example.org/sdt-worker:1"
SMALL = {"workers": 1, "worker_cpu": 1024, "memory": 2, "image": IMAGE}
SDT = Path(sys.executable).with_name("sdt")


def created(before: dict[str, list[str]], after: dict[str, list[str]]) -> dict[str, list[str]]:
    return {
        kind: sorted(set(after[kind]) - set(before[kind])) for kind in after if set(after[kind]) - set(before[kind])
    }


def test_a_start_whose_scheduler_never_answers_fails_in_time_and_leaves_nothing(inventory, black_hole):
    before = inventory()
    started = time.monotonic()
    with pytest.raises(ClusterStartError) as err:
        get_plug("fargate", **SMALL, start_timeout=3, scheduler_address=black_hole.address).init_client()
    elapsed = time.monotonic() - started
    black_hole.wait_for_a_connection(0)  # the start got as far as its scheduler: all was created
    assert str(err.value) == (
        f"plug 'fargate': the cluster did not start within start_timeout=3 s (its scheduler at "
        f"{black_hole.address} never answered); everything it created was deleted"
    )
    assert elapsed < 3 + 20, elapsed  # the timeout, then the deletions
    assert inventory() == before


def test_an_api_error_midway_deletes_what_was_created_before_it(inventory):
    before = inventory()
    with pytest.raises(ClusterStartError, match=r"did not start: .*NoSuchEntity.*; everything it created was deleted"):
        # The task role is created, then attaching this policy fails: the ECS cluster and
        # both roles exist at that point.
        get_plug("fargate", **SMALL, task_role_policies=["arn:aws:iam::aws:policy/NoSuchPolicy"]).init_client()
    assert inventory() == before


def test_resources_the_user_passed_in_are_never_touched(inventory, black_hole):
    ec2, ecs = boto3.client("ec2"), boto3.client("ecs")
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="mine", Description="mine", VpcId=vpc)["GroupId"]
    cluster = ecs.create_cluster(clusterName="mine")["cluster"]["clusterArn"]
    before = inventory()
    plug = get_plug(
        "fargate",
        **SMALL,
        vpc=vpc,
        subnets=[subnet],
        security_groups=[group],
        cluster_arn=cluster,
        start_timeout=3,
        scheduler_address=black_hole.address,
    )
    with pytest.raises(ClusterStartError):
        plug.init_client()
    assert inventory() == before
    assert ecs.describe_clusters(clusters=[cluster])["clusters"][0]["status"] == "ACTIVE"


def test_a_started_cluster_is_secure_by_default_and_closing_it_deletes_everything(inventory):
    before = inventory()
    # A real scheduler for the cluster to connect to; TLS is tested at the backend boundary.
    with LocalCluster(
        n_workers=0, processes=False, protocol="tcp", host="127.0.0.1", dashboard_address="127.0.0.1:0"
    ) as local:
        plug = get_plug(
            "fargate", **SMALL, tls=False, environment={"TOKEN": SECRET}, scheduler_address=local.scheduler_address
        )
        with plug as client:
            assert client.scheduler_info()["address"] == local.scheduler_address
            during = inventory()
            new = created(before, during)
            assert {k: len(v) for k, v in new.items()} == {
                "ecs clusters": 1,
                "running tasks": 1,  # the worker; the scheduler was given
                "task definitions": 2,
                "iam roles": 2,
                "security groups": 1,
                "log groups": 1,
            }
            (group,) = boto3.client("ec2").describe_security_groups(GroupIds=new["security groups"])["SecurityGroups"]
            assert [rule.get("IpRanges") for rule in group["IpPermissions"]] == [[]]  # only its own members
            (cluster,) = new["ecs clusters"]
            (task,) = boto3.client("ecs").describe_tasks(cluster=cluster, tasks=new["running tasks"])["tasks"]
            assert task["startedBy"].startswith("sdt-core/")
            assert SECRET not in repr(plug)
    assert inventory() == before


#: What the stand-in for the awslogs driver writes for each task.
CONTAINER_LINE = "container output that only CloudWatch has"


def awslogs_driver() -> None:
    """Stand-in for ECS's awslogs log driver, which moto does not run: each running task's
    container writes a line to the stream its task definition names, {prefix}/{container}/{task id}."""
    ecs, logs = boto3.client("ecs"), boto3.client("logs")
    for cluster in ecs.list_clusters()["clusterArns"]:
        arns = ecs.list_tasks(cluster=cluster)["taskArns"]
        for task in ecs.describe_tasks(cluster=cluster, tasks=arns)["tasks"] if arns else []:
            definition = ecs.describe_task_definition(taskDefinition=task["taskDefinitionArn"])["taskDefinition"]
            (container,) = definition["containerDefinitions"]
            options = container["logConfiguration"]["options"]
            group, stream = options["awslogs-group"], f"{options['awslogs-stream-prefix']}/{container['name']}/"
            stream += task["taskArn"].split("/")[-1]
            with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
                logs.create_log_stream(logGroupName=group, logStreamName=stream)
            event = {"timestamp": int(time.time() * 1000), "message": f"{container['name']}: {CONTAINER_LINE}"}
            logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=[event])


def inventory_with_container_logs(frame):
    """The analysis: runs while the cluster's tasks are up, so their containers 'write' then."""
    awslogs_driver()
    return {"values": len(frame)}


def test_a_run_keeps_each_tasks_cloudwatch_log_and_the_schedulers_log(inventory, tmp_path):
    before = inventory()
    # The worker that computes is a real local one: Fargate tasks run nothing under moto.
    with LocalCluster(
        n_workers=1,
        threads_per_worker=1,
        processes=False,
        protocol="tcp",
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
    ) as local:
        plug = get_plug("fargate", **SMALL, tls=False, scheduler_address=local.scheduler_address)
        summary = run(
            "sample://?systems=2&days=3&real=false",
            plug=plug,
            out=tmp_path / "out",
            analysis=inventory_with_container_logs,
            report=False,
        )
    assert (summary.ok, summary.failed) == (2, 0)
    logs = tmp_path / "out" / "logs"
    assert sorted(p.name for p in summary.logs) == ["scheduler.log", "worker-0.log"]
    assert f"dask-worker: {CONTAINER_LINE}" in (logs / "worker-0.log").read_text()  # from CloudWatch
    assert "distributed.scheduler - INFO - Register worker" in (logs / "scheduler.log").read_text()
    assert inventory() == before  # the log group went with the cluster, after the logs were read


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_a_signal_during_the_start_deletes_everything_and_exits_cleanly(inventory, black_hole, stop):
    before = inventory()
    command = [str(SDT), "up", "fargate", "--workers", "1", "--worker-cpu", "1024", "--memory", "2"]
    command += ["--image", IMAGE, "--start-timeout", "120", "--environment", json.dumps({"TOKEN": SECRET})]
    command += ["--set", f"scheduler_address={black_hole.address}"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        try:
            black_hole.wait_for_a_connection(120)
            assert created(before, inventory())["ecs clusters"]
            proc.send_signal(stop)
            out, err = proc.communicate(timeout=120)
        finally:
            proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err and SECRET not in out + err
    assert err.strip().splitlines()[-1] == "Cluster closed."
    assert inventory() == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "no image; build one with `sdt image DIR`, push it, and set image=REPOSITORY:TAG"),
        (["--image", IMAGE, "--vpc", "vpc-0000000000"], "VPC vpc-0000000000 does not exist in us-east-1; fix vpc"),
        (
            ["--image", IMAGE, "--subnets", '["subnet-00000000"]'],
            "subnet subnet-00000000 does not exist in us-east-1; fix subnets",
        ),
        (
            ["--image", IMAGE, "--security-groups", '["sg-00000000"]'],
            "security group sg-00000000 does not exist in us-east-1; fix security_groups",
        ),
        (
            ["--image", IMAGE, "--set", "cluster_arn=arn:aws:ecs:us-east-1:123456789012:cluster/none"],
            "ECS cluster arn:aws:ecs:us-east-1:123456789012:cluster/none is not active in us-east-1; fix cluster_arn",
        ),
    ],
)
def test_each_preflight_failure_is_one_line_and_creates_nothing(inventory, args, message):
    before = inventory()
    result = subprocess.run([str(SDT), "up", "fargate", *args], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr == f"sdt: error: plug 'fargate': {message}\n"
    assert inventory() == before


@pytest.mark.parametrize(
    ("unset", "message"),
    [
        (
            ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"),
            "no AWS credentials found; set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
            "or run `aws configure`",
        ),
        (("AWS_DEFAULT_REGION", "AWS_REGION"), "no AWS region; set region_name=... or AWS_DEFAULT_REGION"),
    ],
)
def test_missing_credentials_or_region_are_one_line(inventory, monkeypatch, tmp_path, unset, message):
    for name in unset:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))  # no ~/.aws of this machine
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    before = inventory()
    result = subprocess.run([str(SDT), "up", "fargate", "--image", IMAGE], capture_output=True, text=True, timeout=120)
    assert (result.returncode, result.stderr) == (2, f"sdt: error: plug 'fargate': {message}\n")
    assert inventory() == before


def test_plan_prints_the_resources_and_their_cost_and_creates_nothing(inventory):
    from sdt_fargate.prices import PRICES, RATES, SPOT_RATES

    before = inventory()
    command = [str(SDT), "plan", "fargate", "--workers", "10", "--memory", "16", "--threads", "4"]
    command += ["--set", f"image={IMAGE}", "--region-name", "us-east-1"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    per_vcpu, per_gb = RATES["us-east-1"]
    worker, scheduler = 4 * per_vcpu + 16 * per_gb, 1 * per_vcpu + 4 * per_gb
    spot_vcpu, spot_gb = SPOT_RATES["us-east-1"]
    spot = 4 * spot_vcpu + 16 * spot_gb
    lines = result.stdout.splitlines()
    assert lines[:7] == [
        "Plan for plug 'fargate' (nothing has been created)",
        f"  scheduler: 1 x Fargate task, 1 vCPU, 4 GiB ({scheduler:.4f}/h each)",
        f"  workers: 10 x Fargate task, 4 vCPU, 16 GiB ({worker:.4f}/h each; on spot {spot:.4f}/h)",
        f"  image: {IMAGE}",
        "  region/location: us-east-1 (from region_name)",
        "  network: private IPs only, a new security group open only to the cluster's own tasks",
        "  TLS: on",
    ]
    assert f"Estimated cost: {10 * worker + scheduler:.2f} USD per hour" in result.stdout
    assert f"taken on {PRICES.taken}" in result.stdout
    assert inventory() == before
