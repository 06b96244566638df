from __future__ import annotations

import json
import socket
import urllib.request
from collections.abc import Callable, Iterator

import pytest


@pytest.fixture
def fargate_api(aws: str) -> str:
    """The moto server, made to behave as FargateCluster needs (see shared NOTES.md).

    moto returns no ECS account settings and moves a task on one state per describe call;
    here the long ARN format is on and tasks stay RUNNING until stopped.
    """
    import boto3

    boto3.client("ecs").put_account_setting(name="taskLongArnFormat", value="enabled")
    transition = {"model_name": "ecs::task", "transition": {"progression": "manual", "times": 10**9}}
    request = urllib.request.Request(
        f"{aws}/moto-api/state-manager/set-transition", data=json.dumps(transition).encode(), method="POST"
    )
    urllib.request.urlopen(request).close()
    return aws


@pytest.fixture
def inventory(fargate_api: str) -> Callable[[], dict[str, list[str]]]:
    return list_resources


def list_resources() -> dict[str, list[str]]:
    """Every kind of resource a Fargate start creates, as the AWS API lists it now.

    Network interfaces are left out: Fargate gives each task one and AWS deletes it when the
    task stops; moto keeps them. Running tasks are listed instead.
    """
    import boto3

    ecs, iam, ec2, logs = (
        boto3.client(s, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
        for s in ("ecs", "iam", "ec2", "logs")
    )
    clusters = ecs.list_clusters()["clusterArns"]
    described = ecs.describe_clusters(clusters=clusters)["clusters"] if clusters else []
    tasks = []
    for cluster in clusters:
        arns = ecs.list_tasks(cluster=cluster)["taskArns"]
        if arns:
            tasks += [t["taskArn"] for t in ecs.describe_tasks(cluster=cluster, tasks=arns)["tasks"]
                      if t["lastStatus"] != "STOPPED"]  # fmt: skip
    return {
        "ecs clusters": sorted(c["clusterArn"] for c in described if c["status"] == "ACTIVE"),
        "running tasks": sorted(tasks),
        "task definitions": sorted(
            ecs.list_task_definitions(status="ACTIVE")["taskDefinitionArns"]
            + ecs.list_task_definitions(status="INACTIVE")["taskDefinitionArns"]
        ),
        "iam roles": sorted(r["RoleName"] for r in iam.list_roles()["Roles"]),
        "security groups": sorted(g["GroupId"] for g in ec2.describe_security_groups()["SecurityGroups"]),
        "log groups": sorted(g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]),
        "vpcs": sorted(v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"]),
        "subnets": sorted(s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]),
    }


class BlackHole:
    """A scheduler address that accepts connections and never answers."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.address = f"tls://127.0.0.1:{self.listener.getsockname()[1]}"
        self.accepted: list[socket.socket] = []

    def wait_for_a_connection(self, timeout: float) -> None:
        """Return once a client connects: by then a start has created all its resources."""
        self.listener.settimeout(timeout)
        self.accepted.append(self.listener.accept()[0])

    def close(self) -> None:
        for conn in self.accepted:
            conn.close()
        self.listener.close()


@pytest.fixture
def black_hole() -> Iterator[BlackHole]:
    hole = BlackHole()
    try:
        yield hole
    finally:
        hole.close()
