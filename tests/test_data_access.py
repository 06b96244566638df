"""The workers can read DATA: refused before the start when they cannot see this machine's files,
checked on one worker before the first key otherwise (real LocalClusters)."""

from __future__ import annotations

import json
import os
import textwrap

import pytest

from sdt_core import ClientPlug, SdtError, get_plug, open_data, run
from sdt_core.dataplugs.sample import synthetic_system
from sdt_core.plugs.discovery import registry

INVENTORY = "sdt_core.analysis:data_inventory"

#: A worker preload that takes away root's power to read any file (CAP_DAC_OVERRIDE,
#: CAP_DAC_READ_SEARCH): the worker then cannot see a folder of mode 000, as a worker on
#: another machine cannot see this one's; the client, with its powers, still can.
BLIND = """
import ctypes


class Header(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class Data(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def dask_setup(worker):
    libc = ctypes.CDLL(None, use_errno=True)
    header, data = Header(0x20080522, 0), (Data * 2)()
    libc.capget(ctypes.byref(header), data)
    keep = ~((1 << 1) | (1 << 2)) & 0xFFFFFFFF
    data[0].effective &= keep
    data[0].permitted &= keep
    if libc.capset(ctypes.byref(header), data):
        raise OSError(ctypes.get_errno(), "capset")
"""


@pytest.fixture
def folder(tmp_path):
    data = tmp_path / "systems"
    data.mkdir()
    for i in range(2):
        synthetic_system(i, 3).to_csv(data / f"site-{i}.csv")
    return data


class Elsewhere(ClientPlug):
    """A plug whose workers run on machines of their own (as in a cloud): they never see this one's files."""

    workers_share_files = False
    started = False

    def init_client(self):
        type(self).started = True
        raise AssertionError("a run refused before the start starts nothing")


def test_local_data_with_workers_elsewhere_is_refused_before_anything_starts(folder, tmp_path):
    with pytest.raises(SdtError) as refused:
        run(str(folder), plug=Elsewhere(), out=tmp_path / "out", analysis=INVENTORY)
    assert str(refused.value) == (
        f"DATA {folder} is on this machine, but the workers of Elsewhere cannot see this machine's files; put the "
        "data in an object store (s3://BUCKET/PREFIX, az://CONTAINER/PREFIX) or a file system the workers share"
    )
    assert not Elsewhere.started and not (tmp_path / "out").exists()


def test_the_cloud_plugs_refuse_local_data_on_a_dry_run(sdt, folder):
    result = sdt("run", str(folder), "--plug", "fargate", "--set", "image=repo:tag", "--dry-run")
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip().splitlines() == [
        f"sdt: error: DATA {folder} is on this machine, but the workers of plug 'fargate' cannot see this "
        "machine's files; put the data in an object store (s3://BUCKET/PREFIX, az://CONTAINER/PREFIX) or a file "
        "system the workers share"
    ]


@pytest.mark.parametrize(
    ("plug", "settings", "shares"),
    [
        ("local", {}, True),
        ("fargate", {"image": "repo:tag"}, False),
        ("azure", {}, False),
        ("address", {"address": "tcp://127.0.0.1:8786"}, None),
        ("ssh", {"hosts": ["127.0.0.1", "localhost"]}, True),
        ("ssh", {"hosts": ["10.0.0.1", "node-2"], "insecure": True}, None),
        ("slurm", {}, None),
    ],
)
def test_each_built_in_plug_says_whether_its_workers_share_this_machines_files(plug, settings, shares):
    assert registry().workers_share_files(plug, registry().settings(plug, settings)) is shares
    if plug == "local":
        assert get_plug("local").workers_share_files is True


class Blind(ClientPlug):
    """A LocalCluster whose one worker cannot read this machine's files (BLIND, imported from `preload`)."""

    preload = ""

    def init_client(self):
        from distributed import Client, LocalCluster

        self.cluster = LocalCluster(
            n_workers=1,
            threads_per_worker=1,
            memory_limit="1GiB",
            dashboard_address="127.0.0.1:0",
            host="127.0.0.1",
            preload=[self.preload],
        )
        self.client = Client(self.cluster)
        return self.client


@pytest.mark.skipif(os.geteuid() != 0, reason="makes a worker that cannot read files by dropping root's powers")
def test_a_path_the_workers_cannot_read_ends_the_run_before_any_key(folder, tmp_path):
    (tmp_path / "blind.py").write_text(textwrap.dedent(BLIND))
    Blind.preload = str(tmp_path / "blind.py")
    data = open_data(str(folder))
    folder.chmod(0)  # root reads it here; the blinded worker cannot
    try:
        with pytest.raises(SdtError) as failed:
            run(data, plug=Blind(), out=tmp_path / "out", analysis=INVENTORY, report=False)
    finally:
        folder.chmod(0o755)
    message = str(failed.value)
    assert message.startswith(f"the workers cannot read {folder}: PermissionError: [Errno 13] Permission denied")
    assert message.endswith(
        "nothing was run. Give them data they can reach: an object store (s3://BUCKET/PREFIX, az://CONTAINER/PREFIX) "
        "or a file system the workers share, with the credentials they need"
    )
    assert (tmp_path / "out" / "results.jsonl").read_text() == ""


def test_workers_without_the_stores_endpoint_end_the_run_in_one_line(sdt, aws, tmp_path):
    import boto3

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="fleet")
    body = synthetic_system(0, 3).to_csv().encode()
    s3.put_object(Bucket="fleet", Key="systems/site-0.csv", Body=body)
    unreachable = "AWS_ENDPOINT_URL=http://127.0.0.1:9"  # the workers' S3 is nowhere
    result = sdt(
        *("run", "s3://fleet/systems", "--analysis", INVENTORY, "--out", str(tmp_path / "out"), "--no-report"),
        *("--workers", "1", "--threads", "1", "--set", "dashboard_address=127.0.0.1:0", "--set", f"env={unreachable}"),
        timeout=300,
    )
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("sdt:")]
    assert errors == [
        "sdt: error: the workers cannot read s3://fleet/systems: cannot reach the S3 endpoint http://127.0.0.1:9 "
        "(EndpointConnectionError): check AWS_ENDPOINT_URL and the network; nothing was run. Give them data they "
        "can reach: an object store (s3://BUCKET/PREFIX, az://CONTAINER/PREFIX) or a file system the workers share, "
        "with the credentials they need"
    ]
    assert "Traceback" not in result.stderr
    assert [json.loads(line) for line in (tmp_path / "out" / "results.jsonl").read_text().splitlines()] == []


def test_workers_all_paused_for_memory_end_the_run_in_one_line_instead_of_waiting(tmp_path, monkeypatch):
    """In-process workers of 50 MiB: this process's memory is theirs, so they pause at once."""
    import time

    import dask.config

    from sdt_core.job import access

    from .priced import Numbered

    monkeypatch.setattr(access, "PAUSED_GRACE", 3.0)  # the check would otherwise wait its 600 s
    started = time.monotonic()
    settings = {"workers": 1, "threads": 1, "memory": 0.05, "processes": False, "settled": True}
    with pytest.raises(SdtError) as refused, dask.config.set({access.TIMEOUT_CONFIG: 40}):
        run(Numbered(systems=2), plug="tests.priced", settings=settings, out=tmp_path / "out", report=False)
    assert time.monotonic() - started < 40
    message = str(refused.value)
    assert message.startswith("every worker is paused for memory before the first key (using ")
    assert message.endswith("GiB limit): give each worker more memory (--memory); nothing was run")
    assert "of a 0.05 GiB limit" in message
