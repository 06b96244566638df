"""The same systems from every source give the same rows: CSV files, Parquet files, a partitioned
long dataset, S3 (moto's server) and Azure Blob Storage (Azurite), on one shared 2-worker cluster."""

from __future__ import annotations

import contextlib
import json
import urllib.request
from collections.abc import Iterator

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from sdt_core import ClientPlug, open_data, run
from sdt_core.acceleration.equivalence import compare_runs
from sdt_core.dataplugs.sample import synthetic_system

SYSTEMS = [f"site-{i}" for i in range(3)]
#: Over a new year, so that the long dataset has two year partitions per system.
START, DAYS = "2022-12-22", 20
INVENTORY = "sdt_core.analysis:data_inventory"
FIELDS = ["status", "power_column", "values", "days", "max_power", "missing_share"]


def system_frame(index: int) -> pd.DataFrame:
    """A synthetic system with a temperature column before its power (the power is named, never guessed)."""
    frame = synthetic_system(index, DAYS, start=START).reset_index()
    frame.insert(1, "temperature", 20.0 + frame["ac_power"])
    return frame


def long_rows(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The systems as long rows: system_id, timestamp, channel, value (and year, to partition by)."""
    parts = []
    for system, frame in frames.items():
        for channel in ("temperature", "ac_power"):
            parts.append(
                pd.DataFrame(
                    {"system_id": system, "timestamp": frame["timestamp"], "channel": channel, "value": frame[channel]}
                )
            )
    rows = pd.concat(parts, ignore_index=True)
    rows["year"] = rows["timestamp"].dt.year
    return rows


@pytest.fixture(scope="module")
def stores(moto_server, azurite):
    """This process and the shared cluster's workers reach moto's S3 and Azurite (never a real account)."""
    with pytest.MonkeyPatch.context() as env:
        for name, value in {
            "AWS_ENDPOINT_URL": moto_server,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AZURE_STORAGE_CONNECTION_STRING": azurite,
        }.items():
            env.setenv(name, value)
        env.delenv("AWS_PROFILE", raising=False)
        yield
        urllib.request.urlopen(urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST")).close()


@pytest.fixture(scope="module")
def sources(stores, tmp_path_factory):
    """Every source of the same systems, by name: a URL (or folder) and its data options."""
    import s3fs
    from adlfs import AzureBlobFileSystem

    root = tmp_path_factory.mktemp("sources")
    frames = {system: system_frame(i) for i, system in enumerate(SYSTEMS)}
    for kind in ("csv", "parquet"):
        (root / kind).mkdir()
    for system, frame in frames.items():
        frame.to_csv(root / "csv" / f"{system}.csv", index=False)
        frame.to_parquet(root / "parquet" / f"{system}.parquet", index=False)
    rows = long_rows(frames)
    table = pa.Table.from_pandas(rows, preserve_index=False)
    ds.write_dataset(
        table, root / "long", format="parquet", partitioning=["system_id", "year"], partitioning_flavor="hive"
    )
    rows.drop(columns="year").to_parquet(root / "one-table.parquet", index=False, row_group_size=len(frames["site-0"]))

    s3 = s3fs.S3FileSystem()
    s3.mkdir("fleet")
    s3.put(str(root / "parquet") + "/", "fleet/parquet/", recursive=True)
    s3.put(str(root / "long") + "/", "fleet/long/", recursive=True)
    blob = AzureBlobFileSystem()
    blob.mkdir("fleet")
    for kind in ("csv", "parquet"):
        for file in (root / kind).iterdir():
            blob.put(str(file), f"fleet/{kind}/{file.name}")
    return {
        "csv files": (str(root / "csv"), {}),
        "parquet files": (str(root / "parquet"), {}),
        "partitioned long dataset": (str(root / "long"), {}),
        "one table with a system column": (str(root / "one-table.parquet"), {"system_column": "system_id"}),
        "s3 parquet files": ("s3://fleet/parquet", {}),
        "s3 partitioned long dataset": ("s3://fleet/long", {}),
        "az csv files": ("az://fleet/csv", {}),
        "az parquet files": ("az://fleet/parquet", {}),
    }


class Attach(ClientPlug):
    """The shared cluster, attached to (sdt leaves it running)."""

    address = ""

    def init_client(self):
        from distributed import Client

        self.client = Client(self.address)
        return self.client


@contextlib.contextmanager
def attached_cluster() -> Iterator[Attach]:
    """A 2-worker LocalCluster (one thread, 1.5 GiB each) and a plug attached to it; workers inherit the environment."""
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2, threads_per_worker=1, memory_limit="1.5GiB", dashboard_address="127.0.0.1:0", host="127.0.0.1"
    ) as local:
        plug = Attach()
        plug.address = local.scheduler_address
        yield plug


@pytest.fixture(scope="module")
def cluster(stores):
    """One 2-worker cluster for the module; its workers inherit the stores' environment."""
    with attached_cluster() as plug:
        yield plug


def rows_of(cluster, source, out, **kwargs) -> list[dict]:
    url, options = source
    run(open_data(url, **options), plug=cluster, out=out, report=False, **kwargs)
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def by_key(rows: list[dict]) -> dict[str, dict]:
    return {str(row["key"][0]): {f: row.get(f) for f in FIELDS} for row in rows}


@pytest.fixture(scope="module")
def csv_rows(cluster, sources, tmp_path_factory):
    return by_key(rows_of(cluster, sources["csv files"], tmp_path_factory.mktemp("csv") / "out", analysis=INVENTORY))


@pytest.mark.parametrize(
    "name",
    [
        "parquet files",
        "partitioned long dataset",
        "one table with a system column",
        "s3 parquet files",
        "s3 partitioned long dataset",
        "az csv files",
        "az parquet files",
    ],
)
def test_every_source_gives_the_rows_of_the_csv_files(cluster, sources, csv_rows, name, tmp_path):
    rows = by_key(rows_of(cluster, sources[name], tmp_path / "out", analysis=INVENTORY))
    assert rows == csv_rows
    assert {row["power_column"] for row in rows.values()} == {"ac_power"}  # named as power: not the temperature
    assert {row["status"] for row in rows.values()} == {"ok"}


def test_sdts_pipeline_gives_the_same_results_from_csv_and_the_partitioned_dataset(cluster, sources, tmp_path):
    csv = rows_of(cluster, sources["csv files"], tmp_path / "csv", keys=["site-1"])
    long = rows_of(cluster, sources["partitioned long dataset"], tmp_path / "long", keys=["site-1"])
    assert csv[0]["status"] == "ok" and "capacity" in csv[0], csv[0]
    assert compare_runs(long, csv) == {}
    assert long[0]["capacity"] == csv[0]["capacity"]  # the rule allows 1e-6: these are equal


def test_a_partitioned_dataset_lists_its_systems_by_folder_and_pivots_its_channels(sources):
    plug = open_data(sources["partitioned long dataset"][0])
    assert plug.keys() == [(s,) for s in SYSTEMS]
    assert plug.layout().kind == "partitions" and plug.layout().system == "system_id"
    assert list(plug.get_data(("site-2",)).columns) == ["ac_power", "temperature"]
