"""A FargateCluster that removes everything it created, secure by default.

Imported only when a cluster is made. dask-cloudprovider's `FargateCluster` leaves what it
created behind when its start fails, and deletes the rest only when it is garbage collected.
This subclass:

- bounds the whole start by `start_timeout`;
- on any failed start (error, timeout, Ctrl-C, SIGTERM) and on close, deletes every resource
  tagged with this start's id (`sdt_fargate.aws.remove_created`), and waits for that;
- creates its security group open only to its own members and the `ingress` ranges (not to
  0.0.0.0/0), and one log group per cluster, tagged like everything else.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
import weakref
from typing import TYPE_CHECKING, Any

from dask_cloudprovider.aws import FargateCluster

from sdt_core import IDLE_PRELOAD, ClusterStartError, idle_environment
from sdt_fargate.aws import START_TAG, STARTED_TAG, log_group_prefix, region_of, remove_created, started_by
from sdt_fargate.spot import with_spot_fallback

if TYPE_CHECKING:
    from sdt_fargate import FargateSettings

log = logging.getLogger("sdt_fargate")

#: Settings of the plug that are not FargateCluster parameters.
PLUG_ONLY = ("tls", "public_ip", "ingress", "start_timeout", "cleanup_timeout", "keep_logs", "spot")
#: What to do about resources a close could not delete.
CLEAN = "`sdt clean fargate` deletes them later"


class SdtFargateCluster(FargateCluster):
    def __init__(
        self,
        *,
        start_id: str,
        start_timeout: float,
        cleanup_timeout: float,
        ingress: list[str],
        keep_logs: bool,
        **kwargs: Any,
    ) -> None:
        self.start_id = start_id
        self._start_timeout = start_timeout
        self._cleanup_timeout = cleanup_timeout
        self._ingress = list(ingress)
        self._keep_logs = keep_logs
        self._user_cluster = kwargs.get("cluster_arn")
        self._start_entered = threading.Event()
        self._start_ended = threading.Event()
        self._removed = False
        self._created_as = ""
        try:
            super().__init__(**kwargs)
        except BaseException:
            # On Ctrl-C or SIGTERM the start is cancelled in the event loop's thread: wait
            # until it has removed what it created, so that the process never exits before.
            if self._start_entered.is_set():
                self._start_ended.wait(self._cleanup_timeout + 30)
            self._loop_runner.stop()
            raise

    async def _start(self) -> None:
        self._start_entered.set()
        self._created_as = self.name  # in the names of what is created; may change once connected
        try:
            await asyncio.wait_for(super()._start(), self._start_timeout)
        except BaseException as exc:
            left = await asyncio.shield(self._remove_created())
            if isinstance(exc, Exception):
                raise self._start_error(exc, left) from exc
            raise
        finally:
            self._start_ended.set()

    def _start_error(self, exc: Exception, left: list[str]) -> ClusterStartError:
        address = getattr(self.scheduler, "address", None)
        if isinstance(exc, TimeoutError):
            what = f"did not start within start_timeout={self._start_timeout:g} s"
            if address:
                what += f" (its scheduler at {address} never answered)"
        else:
            what = f"did not start: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": ")
        removed = (
            f"could not delete {', '.join(left)} (tag {START_TAG}={self.start_id}): {CLEAN}"
            if left
            else "everything it created was deleted"
        )
        return ClusterStartError(f"plug 'fargate': the cluster {what}; {removed}")

    async def _close(self) -> None:
        try:
            await super()._close()
        finally:
            left = await self._remove_created()
            if left:
                log.error(
                    "fargate: could not delete %s (tag %s=%s); %s", ", ".join(left), START_TAG, self.start_id, CLEAN
                )

    async def _remove_created(self) -> list[str]:
        if self._removed:
            return []
        left = await remove_created(
            self._client, self.start_id, self._created_as, self._user_cluster, self._cleanup_timeout, self._keep_logs
        )
        self._removed = True
        self._detach_finalizers()
        return left

    def _detach_finalizers(self) -> None:
        """Drop dask-cloudprovider's per-resource finalizers: the removal above replaced them.

        They would otherwise run at exit, on a closed event loop, and print errors.
        """
        for finalizer in list(getattr(weakref.finalize, "_registry", {})):
            info = finalizer.peek()
            if info is not None and info[0] is self:
                finalizer.detach()

    async def _create_security_groups(self) -> list[str]:
        async with self._client("ec2") as ec2:
            group = await ec2.create_security_group(
                GroupName=self._security_group_name,
                Description="sdt-core: Dask scheduler and workers",
                VpcId=self._vpc,
                TagSpecifications=[{"ResourceType": "security-group", "Tags": _aws_tags(self.tags)}],
            )
            gid = group["GroupId"]
            rules: list[dict[str, Any]] = [
                {"IpProtocol": "tcp", "FromPort": 0, "ToPort": 65535, "UserIdGroupPairs": [{"GroupId": gid}]}
            ]
            for cidr in self._ingress:
                ranges = {"Ipv6Ranges": [{"CidrIpv6": cidr}]} if ":" in cidr else {"IpRanges": [{"CidrIp": cidr}]}
                rules.append({"IpProtocol": "tcp", "FromPort": 8786, "ToPort": 8787, **ranges})
            await ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=rules)
        return [gid]

    async def _create_cloudwatch_logs_group(self) -> str:
        name = f"{log_group_prefix()}{self.name}"
        async with self._client("logs") as logs:
            await logs.create_log_group(logGroupName=name, tags=self.tags)
            await logs.put_retention_policy(logGroupName=name, retentionInDays=self._cloudwatch_logs_default_retention)
        return name

    def new_worker_spec(self) -> dict[str, dict[str, Any]]:
        """A worker's spec; on Fargate Spot, its ECS client falls back to on-demand (`sdt_fargate.spot`)."""
        spec: dict[str, dict[str, Any]] = super().new_worker_spec()
        if not self._fargate_spot:
            return spec
        return {
            name: {
                **each,
                "options": {**each["options"], "client": with_spot_fallback(each["options"]["client"], str(name))},
            }
            for name, each in spec.items()
        }

    def _check_scheduler_tls_config(self) -> None:
        """The plug configures TLS itself (`--protocol tls` and certificates in the environment).

        dask-cloudprovider's check looks for `--tls*` scheduler arguments and would warn.
        """


def cloudwatch_logs(cluster: FargateCluster) -> dict[str, str]:
    """The CloudWatch log of each of `cluster`'s tasks, by name: `scheduler` (unless the
    scheduler was given, not started) and `worker-NAME`.

    dask-cloudprovider's `ECSCluster.logs()` fails (its tasks keep the log group and stream
    prefix in `kwargs`, where `Task.logs` does not look), so the streams it names,
    {prefix}/{container}/{task id} in the cluster's log group, are read here.
    """
    from dask_cloudprovider.aws.ecs import Task

    tasks = {f"worker-{name}": worker for name, worker in cluster.workers.items()}
    if isinstance(cluster.scheduler, Task):
        tasks["scheduler"] = cluster.scheduler
    return {name: cluster.sync(_task_log, cluster, task) for name, task in tasks.items() if task.task}


async def _task_log(cluster: FargateCluster, task: Any) -> str:
    from botocore.exceptions import ClientError

    group, prefix = task.kwargs["log_group"], task.kwargs["log_stream_prefix"]
    stream = f"{prefix}/{task.task['containers'][0]['name']}/{task.task_id}"
    lines: list[str] = []
    token = None
    async with cluster._client("logs") as logs:
        while True:
            where = {"nextToken": token} if token else {"startFromHead": True}
            try:
                page = await logs.get_log_events(logGroupName=group, logStreamName=stream, **where)
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ResourceNotFoundException":
                    raise
                return f"(nothing in CloudWatch: no stream {stream} in {group})"
            lines += [event["message"] for event in page["events"]]
            if not page["events"] or page["nextForwardToken"] == token:
                return "\n".join(lines)
            token = page["nextForwardToken"]


def _aws_tags(tags: dict[str, Any]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": str(v)} for k, v in tags.items() if k and v]


def tls_environment(security: Any) -> dict[str, str]:
    """Dask config, as environment variables, that gives scheduler and workers the certificates."""
    config = {
        "REQUIRE_ENCRYPTION": "True",
        "TLS__CA_FILE": security.tls_ca_file,
        "TLS__SCHEDULER__CERT": security.tls_scheduler_cert,
        "TLS__SCHEDULER__KEY": security.tls_scheduler_key,
        "TLS__WORKER__CERT": security.tls_worker_cert,
        "TLS__WORKER__KEY": security.tls_worker_key,
        "TLS__CLIENT__CERT": security.tls_client_cert,
        "TLS__CLIENT__KEY": security.tls_client_key,
    }
    return {f"DASK_DISTRIBUTED__COMM__{key}": value for key, value in config.items()}


def start(settings: FargateSettings) -> SdtFargateCluster:
    """Start a cluster with `settings` (after the preflight); on failure nothing is left behind."""
    from distributed.security import Security

    start_id = uuid.uuid4().hex
    kwargs = settings.backend_kwargs()
    for name in PLUG_ONLY:
        kwargs.pop(name)
    security = Security.temporary() if settings.tls else None
    environment = dict(settings.environment)
    scheduler_args = list(kwargs.pop("scheduler_extra_args", None) or [])
    if security is not None:
        environment |= tls_environment(security)
        scheduler_args += ["--protocol", "tls"]
    # sdt-core's idle rule, from the scheduler's start: it holds when every client is gone.
    # Distributed's own (dask-cloudprovider's scheduler_timeout, 5 minutes) ignores connected
    # clients, so it is off ("0") unless given.
    environment |= idle_environment()
    if idle_environment():
        scheduler_args += ["--preload", IDLE_PRELOAD]
    kwargs["scheduler_timeout"] = kwargs.get("scheduler_timeout") or "0"
    for role in ("scheduler", "worker"):
        task_kwargs = dict(kwargs.pop(f"{role}_task_kwargs", None) or {})
        kwargs[f"{role}_task_kwargs"] = task_kwargs | {"startedBy": started_by(start_id)}
    kwargs |= {
        "tags": {**settings.tags, START_TAG: start_id, STARTED_TAG: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
        "fargate_spot": settings.spot,
        "environment": environment,
        "scheduler_extra_args": scheduler_args or None,
        "security": security,
        "fargate_use_private_ip": not settings.public_ip,
        "region_name": region_of(settings),
        "skip_cleanup": kwargs.get("skip_cleanup", True),  # never touch other clusters' resources
    }
    if kwargs.get("scheduler_address"):
        kwargs["shutdown_scheduler"] = False  # a scheduler given is not ours to stop
    kwargs = {k: v for k, v in kwargs.items() if v is not None or k in settings.extra}
    return SdtFargateCluster(
        start_id=start_id,
        n_workers=settings.workers,
        worker_nthreads=settings.threads,
        worker_mem=int(settings.memory * 1024),
        start_timeout=settings.start_timeout,
        cleanup_timeout=settings.cleanup_timeout,
        ingress=settings.ingress,
        keep_logs=settings.keep_logs,
        **kwargs,
    )
