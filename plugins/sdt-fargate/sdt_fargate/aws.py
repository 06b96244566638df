"""The plug's own AWS calls: preflight (reads only) and removal of what one start created.

Every resource a start creates carries the tag `START_TAG` with that start's id, and its
tasks are started by `started_by(id)`; removal deletes exactly those, so resources the user
passed in (a cluster, subnets, security groups, roles) are never touched.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from sdt_core import SettingsError

if TYPE_CHECKING:
    from sdt_fargate import FargateSettings

log = logging.getLogger("sdt_fargate")

START_TAG = "sdt-core-start"
ClientFactory = Callable[[str], Any]  # service name -> aiobotocore client context manager


def started_by(start_id: str) -> str:
    return f"sdt-core/{start_id}"[:128]


# ---- preflight -----------------------------------------------------------------------------


def _session(settings: FargateSettings) -> Any:
    import botocore.session

    session = botocore.session.Session()
    keys = [settings.extra.get(k) for k in ("aws_access_key_id", "aws_secret_access_key")]
    if any(keys):
        session.set_credentials(*keys)
    return session


def region_of(settings: FargateSettings) -> str | None:
    """The region a start uses: the setting, else dask config, else the AWS profile's or environment's."""
    import dask.config

    return (
        settings.region_name
        or dask.config.get("cloudprovider.ecs.region_name", default=None)
        or _session(settings).get_config_variable("region")
    )


def preflight(settings: FargateSettings) -> None:
    """Check credentials, region, image and the given network with read-only calls.

    Raises `SettingsError` naming what to set. Creates nothing.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    if not settings.image:
        raise SettingsError(
            "plug 'fargate': no image; build one with `sdt image DIR`, push it, and set image=REPOSITORY:TAG"
        )
    session = _session(settings)
    if session.get_credentials() is None:
        raise SettingsError(
            "plug 'fargate': no AWS credentials found; set AWS_PROFILE, or AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, or run `aws configure`"
        )
    region = region_of(settings)
    if not region:
        raise SettingsError("plug 'fargate': no AWS region; set region_name=... or AWS_DEFAULT_REGION")

    def client(service: str) -> Any:
        return session.create_client(service, region_name=region)

    try:
        client("sts").get_caller_identity()
    except ClientError as exc:
        raise SettingsError(
            f"plug 'fargate': the AWS credentials were refused ({_code(exc)}); renew them or set AWS_PROFILE"
        ) from None
    except BotoCoreError as exc:
        raise SettingsError(f"plug 'fargate': cannot reach AWS in region {region}: {exc}") from None
    try:
        _check_network(settings, client, str(region))
    except (BotoCoreError, ClientError) as exc:
        raise SettingsError(f"plug 'fargate': a preflight check failed in {region}: {exc}") from None


def _check_network(settings: FargateSettings, client: Callable[[str], Any], region: str) -> None:
    """The given VPC, subnets, security groups and ECS cluster exist (subnets and groups in the VPC)."""
    ec2 = client("ec2")
    vpc = settings.vpc
    if vpc is None:
        default = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
        if not default:
            raise SettingsError(f"plug 'fargate': region {region} has no default VPC; set vpc=... and subnets=[...]")
        vpc = default[0]["VpcId"]
    else:
        _exists(ec2.describe_vpcs, "VpcIds", [vpc], "Vpcs", "VpcId", "VPC", "vpc", region)
    if settings.subnets:
        found = _exists(
            ec2.describe_subnets, "SubnetIds", settings.subnets, "Subnets", "SubnetId", "subnet", "subnets", region
        )
        elsewhere = sorted(s["SubnetId"] for s in found if s["VpcId"] != vpc)
        if elsewhere:
            raise SettingsError(f"plug 'fargate': subnet {elsewhere[0]} is not in VPC {vpc}; fix subnets or vpc")
    if settings.security_groups:
        found = _exists(
            ec2.describe_security_groups, "GroupIds", settings.security_groups, "SecurityGroups", "GroupId",
            "security group", "security_groups", region,
        )  # fmt: skip
        elsewhere = sorted(g["GroupId"] for g in found if g["VpcId"] != vpc)
        if elsewhere:
            raise SettingsError(f"plug 'fargate': security group {elsewhere[0]} is not in VPC {vpc}")
    cluster_arn = settings.extra.get("cluster_arn")
    if cluster_arn:
        clusters = client("ecs").describe_clusters(clusters=[cluster_arn])["clusters"]
        if not any(c.get("status") == "ACTIVE" for c in clusters):
            raise SettingsError(f"plug 'fargate': ECS cluster {cluster_arn} is not active in {region}; fix cluster_arn")


def _exists(
    call: Callable[..., Any], param: str, ids: list[str], key: str, id_key: str, noun: str, setting: str, region: str
) -> list[dict[str, Any]]:
    from botocore.exceptions import ClientError

    try:
        found = call(**{param: list(ids)})[key]
    except ClientError as exc:
        found = []
        if not _code(exc).endswith(("NotFound", "Malformed")):
            raise
    missing = sorted(set(ids) - {item[id_key] for item in found})
    if missing:
        raise SettingsError(f"plug 'fargate': {noun} {missing[0]} does not exist in {region}; fix {setting}")
    return list(found)


def _code(exc: Any) -> str:
    return str(exc.response.get("Error", {}).get("Code", "error"))


# ---- removal -------------------------------------------------------------------------------


def _tagged(tags: Iterable[dict[str, str]] | None, start_id: str) -> bool:
    for tag in tags or ():
        key = tag.get("key", tag.get("Key"))
        value = tag.get("value", tag.get("Value"))
        if key == START_TAG and value == start_id:
            return True
    return False


async def remove_created(
    client: ClientFactory, start_id: str, name: str, user_cluster: str | None, timeout: float, keep_logs: bool = False
) -> list[str]:
    """Delete every resource tagged with `start_id`; return what could not be deleted.

    `name` is the Dask cluster's name, which dask-cloudprovider puts in the names of the
    roles and task definitions it creates; `user_cluster` an ECS cluster the user passed in,
    whose tasks of this start are stopped but which is itself left alone.
    """
    deadline = time.monotonic() + timeout
    left: list[str] = []
    async with client("ecs") as ecs:
        ours = await _tagged_clusters(ecs, start_id)
        await _stop_tasks(ecs, [*ours, *([user_cluster] if user_cluster else [])], start_id, deadline)
        for arn in ours:
            await _retry(functools.partial(ecs.delete_cluster, cluster=arn), f"ECS cluster {arn}", deadline, left)
        await _delete_task_definitions(ecs, name, start_id, deadline, left)
    async with client("iam") as iam:
        await _delete_roles(iam, name, start_id, deadline, left)
    async with client("ec2") as ec2:
        groups = await ec2.describe_security_groups(Filters=[{"Name": f"tag:{START_TAG}", "Values": [start_id]}])
        for group in groups["SecurityGroups"]:
            gid = group["GroupId"]
            await _retry(
                functools.partial(ec2.delete_security_group, GroupId=gid), f"security group {gid}", deadline, left
            )
    if keep_logs:
        return left
    async with client("logs") as logs:
        pages = logs.get_paginator("describe_log_groups").paginate(logGroupNamePrefix=log_group_prefix())
        async for page in pages:
            for group in page["logGroups"]:
                tags = (await logs.list_tags_log_group(logGroupName=group["logGroupName"]))["tags"]
                if tags.get(START_TAG) == start_id:
                    lg = group["logGroupName"]
                    await _retry(
                        functools.partial(logs.delete_log_group, logGroupName=lg), f"log group {lg}", deadline, left
                    )
    return left


def log_group_prefix() -> str:
    return "/sdt-core/"


async def _tagged_clusters(ecs: Any, start_id: str) -> list[str]:
    arns = [arn async for page in ecs.get_paginator("list_clusters").paginate() for arn in page["clusterArns"]]
    ours = []
    for i in range(0, len(arns), 100):
        described = await ecs.describe_clusters(clusters=arns[i : i + 100], include=["TAGS"])
        ours += [c["clusterArn"] for c in described["clusters"] if _tagged(c.get("tags"), start_id)]
    return ours


async def _stop_tasks(ecs: Any, clusters: list[str], start_id: str, deadline: float) -> None:
    """Stop this start's tasks and wait until they have stopped (a cluster with tasks cannot go)."""
    for cluster in clusters:
        running: list[str] = []
        async for page in ecs.get_paginator("list_tasks").paginate(cluster=cluster, startedBy=started_by(start_id)):
            running += page["taskArns"]
        for task in running:
            await ecs.stop_task(cluster=cluster, task=task, reason="sdt-core: cluster closed")
        while running and time.monotonic() < deadline:
            described = await ecs.describe_tasks(cluster=cluster, tasks=running[:100])
            running = [t["taskArn"] for t in described["tasks"] if t["lastStatus"] != "STOPPED"] + running[100:]
            if running:
                await asyncio.sleep(2)


async def _delete_task_definitions(ecs: Any, name: str, start_id: str, deadline: float, left: list[str]) -> None:
    arns: list[str] = []
    for family, status in itertools.product((f"dask-{name}-scheduler", f"dask-{name}-worker"), ("ACTIVE", "INACTIVE")):
        pages = ecs.get_paginator("list_task_definitions").paginate(familyPrefix=family, status=status)
        arns += [arn async for page in pages for arn in page["taskDefinitionArns"]]
    ours = []
    for arn in arns:
        described = await ecs.describe_task_definition(taskDefinition=arn, include=["TAGS"])
        if _tagged(described.get("tags"), start_id):
            ours.append(arn)
    for arn in ours:
        await _retry(
            functools.partial(ecs.deregister_task_definition, taskDefinition=arn),
            f"task definition {arn}",
            deadline,
            left,
        )
    if ours:
        await _retry(
            functools.partial(ecs.delete_task_definitions, taskDefinitions=ours),
            f"task definitions {ours}",
            deadline,
            left,
        )


async def _delete_roles(iam: Any, name: str, start_id: str, deadline: float, left: list[str]) -> None:
    roles = [r async for page in iam.get_paginator("list_roles").paginate() for r in page["Roles"]]
    for role in roles:
        role_name = role["RoleName"]
        if not role_name.startswith(f"dask-{name}-"):
            continue
        if not _tagged((await iam.list_role_tags(RoleName=role_name))["Tags"], start_id):
            continue
        attached = (await iam.list_attached_role_policies(RoleName=role_name))["AttachedPolicies"]
        for policy in attached:
            await iam.detach_role_policy(RoleName=role_name, PolicyArn=policy["PolicyArn"])
        for policy_name in (await iam.list_role_policies(RoleName=role_name))["PolicyNames"]:
            await iam.delete_role_policy(RoleName=role_name, PolicyName=policy_name)
        await _retry(functools.partial(iam.delete_role, RoleName=role_name), f"IAM role {role_name}", deadline, left)


async def _retry(call: Callable[[], Any], what: str, deadline: float, left: list[str]) -> None:
    """Delete, retrying while AWS says a dependency is still being released; note a failure."""
    from botocore.exceptions import ClientError

    while True:
        try:
            await call()
            return
        except ClientError as exc:
            code = _code(exc)
            if code.endswith(("NotFound", "NotFoundException", "NoSuchEntity")):
                return
            if code in ("DependencyViolation", "ClusterContainsTasksException", "DeleteConflict") and (
                time.monotonic() < deadline
            ):
                await asyncio.sleep(3)
                continue
            left.append(f"{what} ({code})")
            return
