"""The fargate plug on a real AWS account: `pytest --run-cloud`, with the variables named below.

It starts a small cluster (costs cents), runs tasks on it, closes it, and checks that nothing
tagged with its start id is left in the account.
"""

from __future__ import annotations

import os

import pytest

from sdt_core import get_plug


@pytest.mark.cloud("AWS_PROFILE|AWS_ACCESS_KEY_ID", "AWS_DEFAULT_REGION|AWS_REGION", "SDT_FARGATE_IMAGE")
def test_a_real_fargate_cluster_computes_and_leaves_nothing_behind():
    import boto3

    # Outside the VPC, set SDT_FARGATE_INGRESS to your address range (e.g. 203.0.113.7/32).
    ingress = os.environ.get("SDT_FARGATE_INGRESS")
    reach = {"public_ip": True, "ingress": [ingress]} if ingress else {}
    image = os.environ["SDT_FARGATE_IMAGE"]
    plug = get_plug("fargate", workers=1, threads=1, worker_cpu=1024, memory=2, image=image, **reach)
    with plug as client:
        assert client.submit(sum, range(10)).result() == 45
        start_id = plug.cluster.start_id
    ecs = boto3.client("ecs")
    arns = ecs.list_clusters()["clusterArns"]
    clusters = ecs.describe_clusters(clusters=arns, include=["TAGS"])["clusters"] if arns else []
    ours = [c for c in clusters if {"key": "sdt-core-start", "value": start_id} in c.get("tags", [])]
    assert all(c["status"] == "INACTIVE" for c in ours)
