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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sdt_core import SettingsError

if TYPE_CHECKING:
    from sdt_core import Leftover
    from sdt_fargate import FargateSettings

log = logging.getLogger("sdt_fargate")

START_TAG = "sdt-core-start"
#: The tag holding the start's time (ISO 8601, UTC), for `sdt clean --older-than`.
STARTED_TAG = "sdt-core-started"
ClientFactory = Callable[[str], Any]  # service name -> aiobotocore client context manager


def started_by(start_id: str) -> str:
    return f"{STARTED_BY}{start_id}"[:128]


STARTED_BY = "sdt-core/"
NO_CREDENTIALS = (
    "no AWS credentials found; set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run `aws configure`"
)
NO_REGION = "no AWS region; set region_name=... or AWS_DEFAULT_REGION"


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
    return region_and_source(settings)[0]


def region_and_source(settings: FargateSettings) -> tuple[str | None, str]:
    """The region a start uses and where it comes from, e.g. ("eu-west-1", "AWS_DEFAULT_REGION")."""
    import os

    import dask.config

    if settings.region_name:
        return settings.region_name, "region_name"
    configured = dask.config.get("cloudprovider.ecs.region_name", default=None)
    if configured:
        return configured, "dask config cloudprovider.ecs.region_name"
    session = _session(settings)
    region = session.get_config_variable("region")
    if not region:
        return None, "not set"
    if os.environ.get("AWS_DEFAULT_REGION") == region:
        return region, "AWS_DEFAULT_REGION, as boto3 uses it"
    return region, f"AWS profile {session.profile or 'default'!r}, as boto3 uses it"


def _session_and_region(settings: FargateSettings) -> tuple[Any, str]:
    """A botocore session with credentials, and the region; else `SettingsError` naming what to set."""
    session = _session(settings)
    if session.get_credentials() is None:
        raise SettingsError(f"plug 'fargate': {NO_CREDENTIALS}")
    region = region_of(settings)
    if not region:
        raise SettingsError(f"plug 'fargate': {NO_REGION}")
    return session, str(region)


def preflight(settings: FargateSettings) -> None:
    """Check credentials, region, image and the given network with read-only calls.

    Raises `SettingsError` naming what to set. Creates nothing.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    if not settings.image:
        raise SettingsError(
            "plug 'fargate': no image; build one with `sdt image DIR`, push it, and set image=REPOSITORY:TAG"
        )
    session, region = _session_and_region(settings)

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


@dataclass(frozen=True)
class Created:
    """One resource a start created, found by its tags."""

    kind: str  # one of KINDS
    name: str  # its ARN, name or id
    start: str  # the start's id (tag START_TAG)
    started: str | None  # the start's time (tag STARTED_TAG), ISO 8601 UTC; None if not tagged
    cluster: str | None = None  # a task's ECS cluster


#: What a start creates, in the order it can be deleted.
KINDS = ("task", "ECS cluster", "task definition", "IAM role", "security group", "log group")


def _tag(tags: Iterable[dict[str, str]] | dict[str, str] | None, key: str) -> str | None:
    if isinstance(tags, dict):
        return tags.get(key)
    for tag in tags or ():
        if tag.get("key", tag.get("Key")) == key:
            return tag.get("value", tag.get("Value"))
    return None


def _ours(tags: Any, start_id: str | None) -> tuple[str, str | None] | None:
    """(start id, start time) if `tags` mark a resource of start `start_id` (None: of any start)."""
    start = _tag(tags, START_TAG)
    if not start or (start_id is not None and start != start_id):
        return None
    return start, _tag(tags, STARTED_TAG)


async def find_created(
    client: ClientFactory, start_id: str | None = None, name: str = "", clusters: Sequence[str] = ()
) -> list[Created]:
    """Every resource tagged by start `start_id` (None: by any start), in the order of `KINDS`.

    `name` is the Dask cluster's name, which dask-cloudprovider puts in the names of the roles
    and task definitions it creates ("": any); `clusters` are ECS clusters not tagged (a user's)
    whose tasks are looked at too: with `start_id` None, every ECS cluster's are.
    """
    found: list[Created] = []
    async with client("ecs") as ecs:
        tagged = await _tagged_clusters(ecs, start_id)
        arns = [c.name for c in tagged]
        others = await _all_clusters(ecs) if start_id is None else [c for c in clusters if c]
        found += await _tasks(ecs, [*arns, *(c for c in others if c not in arns)], start_id)
        found += tagged
        found += await _task_definitions(ecs, name, start_id)
    async with client("iam") as iam:
        roles = [r async for page in iam.get_paginator("list_roles").paginate() for r in page["Roles"]]
        for role in roles:
            if role["RoleName"].startswith(f"dask-{name}-" if name else "dask-"):
                mark = _ours((await iam.list_role_tags(RoleName=role["RoleName"]))["Tags"], start_id)
                found += [Created("IAM role", role["RoleName"], *mark)] if mark else []
    async with client("ec2") as ec2:
        where = (
            {"Name": f"tag:{START_TAG}", "Values": [start_id]}
            if start_id
            else {"Name": "tag-key", "Values": [START_TAG]}
        )
        groups = await ec2.describe_security_groups(Filters=[where])
        for group in groups["SecurityGroups"]:
            mark = _ours(group.get("Tags"), start_id)
            found += [Created("security group", group["GroupId"], *mark)] if mark else []
    async with client("logs") as logs:
        pages = logs.get_paginator("describe_log_groups").paginate(logGroupNamePrefix=log_group_prefix())
        async for page in pages:
            for group in page["logGroups"]:
                tags = (await logs.list_tags_log_group(logGroupName=group["logGroupName"]))["tags"]
                mark = _ours(tags, start_id)
                found += [Created("log group", group["logGroupName"], *mark)] if mark else []
    return found


async def delete_created(client: ClientFactory, found: Sequence[Created], timeout: float, keep_logs: bool) -> list[str]:
    """Delete `found` (from `find_created`) in a safe order, waiting up to `timeout` seconds for
    what AWS releases slowly; return what could not be deleted. With `keep_logs`, log groups
    are kept and lose their start tag, so that no later clean-up takes them."""
    deadline = time.monotonic() + timeout
    left: list[str] = []
    by_kind = {kind: [c for c in found if c.kind == kind] for kind in KINDS}
    async with client("ecs") as ecs:
        await _stop_tasks(ecs, by_kind["task"], deadline)
        for cluster in by_kind["ECS cluster"]:
            await _retry(functools.partial(ecs.delete_cluster, cluster=cluster.name), cluster, deadline, left)
        definitions = by_kind["task definition"]
        for definition in definitions:
            call = functools.partial(ecs.deregister_task_definition, taskDefinition=definition.name)
            await _retry(call, definition, deadline, left)
        if definitions:
            call = functools.partial(ecs.delete_task_definitions, taskDefinitions=[d.name for d in definitions])
            await _retry(call, Created("task definitions", "", "", None), deadline, left)
    async with client("iam") as iam:
        for role in by_kind["IAM role"]:
            await _delete_role(iam, role, deadline, left)
    async with client("ec2") as ec2:
        for group in by_kind["security group"]:
            await _retry(functools.partial(ec2.delete_security_group, GroupId=group.name), group, deadline, left)
    async with client("logs") as logs:
        for log_group in by_kind["log group"]:
            if keep_logs:
                call = functools.partial(logs.untag_log_group, logGroupName=log_group.name, tags=[START_TAG])
            else:
                call = functools.partial(logs.delete_log_group, logGroupName=log_group.name)
            await _retry(call, log_group, deadline, left)
    return left


async def remove_created(
    client: ClientFactory, start_id: str, name: str, user_cluster: str | None, timeout: float, keep_logs: bool = False
) -> list[str]:
    """Delete every resource tagged with `start_id`; return what could not be deleted.

    `name` is the Dask cluster's name (see `find_created`); `user_cluster` an ECS cluster the
    user passed in, whose tasks of this start are stopped but which is itself left alone.
    """
    found = await find_created(client, start_id, name, [user_cluster] if user_cluster else [])
    return await delete_created(client, found, timeout, keep_logs)


def clean_up(settings: FargateSettings, older_than: float | None, dry_run: bool) -> list[Leftover]:
    """What earlier starts left in the settings' region, of starts older than `older_than`
    seconds; deleted unless `dry_run` (log groups kept with `keep_logs`)."""
    from aiobotocore.session import get_session

    from sdt_core import Leftover

    _, region = _session_and_region(settings)
    keys = {k: settings.extra[k] for k in ("aws_access_key_id", "aws_secret_access_key") if settings.extra.get(k)}

    def client(service: str) -> Any:
        return get_session().create_client(service, region_name=region, **keys)

    async def clean() -> list[Leftover]:
        found = [
            c for c in await find_created(client) if Leftover(c.kind, c.name, c.start, c.started).older_than(older_than)
        ]
        left = [] if dry_run else await delete_created(client, found, settings.cleanup_timeout, settings.keep_logs)
        errors = {f"{c.kind} {c.name}": text for c in found for text in left if text.startswith(f"{c.kind} {c.name} ")}
        return [Leftover(c.kind, c.name, c.start, c.started, errors.get(f"{c.kind} {c.name}", "")) for c in found]

    return asyncio.run(clean())


def log_group_prefix() -> str:
    return "/sdt-core/"


async def _all_clusters(ecs: Any) -> list[str]:
    return [arn async for page in ecs.get_paginator("list_clusters").paginate() for arn in page["clusterArns"]]


async def _tagged_clusters(ecs: Any, start_id: str | None) -> list[Created]:
    arns = await _all_clusters(ecs)
    ours = []
    for i in range(0, len(arns), 100):
        described = await ecs.describe_clusters(clusters=arns[i : i + 100], include=["TAGS"])
        for cluster in described["clusters"]:
            mark = _ours(cluster.get("tags"), start_id) if cluster.get("status") != "INACTIVE" else None
            ours += [Created("ECS cluster", cluster["clusterArn"], *mark)] if mark else []
    return ours


async def _tasks(ecs: Any, clusters: Sequence[str], start_id: str | None) -> list[Created]:
    """The running tasks a start ran in `clusters`: started by it, and tagged."""
    found = []
    where = {"startedBy": started_by(start_id)} if start_id else {}
    for cluster in clusters:
        arns = [a async for page in ecs.get_paginator("list_tasks").paginate(cluster=cluster, **where)
                for a in page["taskArns"]]  # fmt: skip
        for i in range(0, len(arns), 100):
            described = await ecs.describe_tasks(cluster=cluster, tasks=arns[i : i + 100], include=["TAGS"])
            for task in described["tasks"]:
                mark = _ours(task.get("tags"), start_id)
                if mark and task.get("startedBy", "").startswith(STARTED_BY) and task["lastStatus"] != "STOPPED":
                    found.append(Created("task", task["taskArn"], *mark, cluster=cluster))
    return found


async def _task_definitions(ecs: Any, name: str, start_id: str | None) -> list[Created]:
    if name:
        families = [f"dask-{name}-scheduler", f"dask-{name}-worker"]
    else:  # a family is matched whole by list_task_definitions, by prefix here
        pages = ecs.get_paginator("list_task_definition_families").paginate(familyPrefix="dask-")
        families = [family async for page in pages for family in page["families"]]
    arns: list[str] = []
    for family, status in itertools.product(families, ("ACTIVE", "INACTIVE")):
        pages = ecs.get_paginator("list_task_definitions").paginate(familyPrefix=family, status=status)
        arns += [arn async for page in pages for arn in page["taskDefinitionArns"]]
    found = []
    for arn in arns:
        mark = _ours((await ecs.describe_task_definition(taskDefinition=arn, include=["TAGS"])).get("tags"), start_id)
        found += [Created("task definition", arn, *mark)] if mark else []
    return found


async def _stop_tasks(ecs: Any, tasks: Sequence[Created], deadline: float) -> None:
    """Stop the tasks and wait until they have stopped (a cluster with tasks cannot go)."""
    by_cluster: dict[str, list[str]] = {}
    for task in tasks:
        by_cluster.setdefault(str(task.cluster), []).append(task.name)
    for cluster, running in by_cluster.items():
        for task_arn in running:
            await ecs.stop_task(cluster=cluster, task=task_arn, reason="sdt-core: cluster closed")
        while running and time.monotonic() < deadline:
            described = await ecs.describe_tasks(cluster=cluster, tasks=running[:100])
            running = [t["taskArn"] for t in described["tasks"] if t["lastStatus"] != "STOPPED"] + running[100:]
            if running:
                await asyncio.sleep(2)


async def _delete_role(iam: Any, role: Created, deadline: float, left: list[str]) -> None:
    attached = (await iam.list_attached_role_policies(RoleName=role.name))["AttachedPolicies"]
    for policy in attached:
        await iam.detach_role_policy(RoleName=role.name, PolicyArn=policy["PolicyArn"])
    for policy_name in (await iam.list_role_policies(RoleName=role.name))["PolicyNames"]:
        await iam.delete_role_policy(RoleName=role.name, PolicyName=policy_name)
    await _retry(functools.partial(iam.delete_role, RoleName=role.name), role, deadline, left)


async def _retry(call: Callable[[], Any], what: Created, deadline: float, left: list[str]) -> None:
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
            left.append(f"{what.kind} {what.name} ({code})".replace("  ", " "))
            return
