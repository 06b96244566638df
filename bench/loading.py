"""What reading a system's data costs, per system-year, against the fast pipeline's own time.

`measure_loads(systems, days, repeats)` writes the same synthetic systems as CSV (wide and
SDT's long format), as Parquet files and as a partitioned long Parquet dataset (here and
in moto's S3, served on loopback for the run), then times the worker's load stage
(`load_frame`: read, pick the power column, index by time) of every key of each source,
the sources in turn and their order alternating over the repeats, and SDT's fast pipeline
on the same frames. `measure_listing(keys)` times the keys of a dataset of `keys`
partition folders against a bare `os.listdir` of the same folder.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

SOURCES = ("csv wide", "csv long", "parquet files", "partitioned dataset", "partitioned dataset on s3 (moto)")


def write_sources(folder: Path, systems: int, days: int) -> dict[str, str]:
    """The same systems in every local layout; returns each source's DATA."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    from sdt_core.dataplugs.sample import synthetic_system

    for name in ("wide", "long", "parquet"):
        (folder / name).mkdir()
    rows = []
    for index in range(systems):
        frame = synthetic_system(index, days).reset_index()
        name = f"system-{index:03d}"
        frame.to_csv(folder / "wide" / f"{name}.csv", index=False)
        frame.to_parquet(folder / "parquet" / f"{name}.parquet", index=False)
        vader = pd.DataFrame(
            {"site": name, "meas_name": "ac_power", "ts": frame["timestamp"], "sensor": "inv-1"}
            | {"meas_val_f": frame["ac_power"]}
        )
        vader.to_csv(folder / "long" / f"{name}.csv", index=False)
        rows.append(
            pd.DataFrame(
                {"system_id": name, "measured_on": frame["timestamp"], "metric_id": 5, "value": frame["ac_power"]}
            )
        )
    table = pd.concat(rows, ignore_index=True)
    table["year"] = table["measured_on"].dt.year
    ds.write_dataset(
        pa.Table.from_pandas(table, preserve_index=False),
        folder / "dataset",
        format="parquet",
        partitioning=["system_id", "year"],
        partitioning_flavor="hive",
    )
    return {
        "csv wide": str(folder / "wide"),
        "csv long": str(folder / "long"),
        "parquet files": str(folder / "parquet"),
        "partitioned dataset": str(folder / "dataset"),
    }


@contextlib.contextmanager
def moto_s3() -> Iterator[str]:
    """moto's S3 in server mode on loopback, this process pointed at it; yields its URL."""
    from sdt_core.testing import free_port

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    names = {"AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}
    saved = {k: os.environ.get(k) for k in [*names, "AWS_DEFAULT_REGION"]}
    os.environ.update(names | {"AWS_DEFAULT_REGION": "us-east-1"})
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/moto-api/", timeout=1).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto server did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def load_seconds(data: Any, keys: list[tuple[Any, ...]]) -> float:
    """Seconds of the worker's load stage for `keys`, one after the other."""
    from sdt_core.dataplugs.frames import load_frame

    start = time.perf_counter()
    for key in keys:
        load_frame(data, key)
    return time.perf_counter() - start


def pipeline_seconds(frames: list[pd.DataFrame]) -> float:
    """Seconds of SDT's fast pipeline over `frames`, one after the other."""
    from sdt_core import acceleration
    from sdt_core.analysis import sdt_pipeline

    substitutions = acceleration.proven()
    start = time.perf_counter()
    for frame in frames:
        with acceleration.key_mode(bool(substitutions), substitutions):
            sdt_pipeline(frame)
    return time.perf_counter() - start


def measure_loads(systems: int, days: int, repeats: int) -> dict[str, Any]:
    """Load and pipeline seconds per system-year, each source against the pipeline."""
    import s3fs

    from sdt_core import open_data
    from sdt_core.dataplugs.frames import load_frame

    years = systems * days / 365
    with tempfile.TemporaryDirectory(prefix="sdt-bench-data-") as scratch, moto_s3():
        sources = write_sources(Path(scratch), systems, days)
        s3 = s3fs.S3FileSystem(skip_instance_cache=True)
        s3.mkdir("bench")
        s3.put(sources["partitioned dataset"] + "/", "bench/dataset/", recursive=True)
        sources["partitioned dataset on s3 (moto)"] = "s3://bench/dataset"
        plugs = {name: open_data(url) for name, url in sources.items()}
        keys = {name: list(plug.keys()) for name, plug in plugs.items()}
        for name, plug in plugs.items():  # imports and first calls out of the figures
            load_frame(plug, keys[name][0])
        frames = [load_frame(plugs["parquet files"], key) for key in keys["parquet files"]]
        pipeline_seconds(frames[:1])  # SDT's imports and first solves, likewise
        seconds: dict[str, list[float]] = {name: [] for name in (*SOURCES, "pipeline")}
        for repeat in range(repeats):  # each round: every source and the pipeline, in alternating order
            order = (*SOURCES, "pipeline") if repeat % 2 == 0 else ("pipeline", *reversed(SOURCES))
            for name in order:
                spent = pipeline_seconds(frames) if name == "pipeline" else load_seconds(plugs[name], keys[name])
                seconds[name].append(spent / years)
    pipeline = seconds.pop("pipeline")
    return {
        "systems": systems,
        "days": days,
        "repeats": repeats,
        "load_s_per_system_year": {name: _stats(values) for name, values in seconds.items()},
        "pipeline_s_per_system_year": statistics.median(pipeline),
        "ratio": {
            name: _stats([v / p for v, p in zip(values, pipeline, strict=True)]) for name, values in seconds.items()
        },
    }


def measure_listing(keys: int) -> dict[str, Any]:
    """Seconds to list the keys of a dataset of `keys` partition folders (one tiny file each)."""
    from sdt_core import open_data

    memory = "/dev/shm" if os.path.isdir("/dev/shm") else None  # 100,000 folders: made in minutes, not hours
    with tempfile.TemporaryDirectory(prefix="sdt-bench-keys-", dir=memory) as scratch:
        root = Path(scratch)
        for system in range(keys):
            folder = root / f"system_id={system}"
            folder.mkdir()
            (folder / "part-0.parquet").write_bytes(b"never read")
        open_data(str(root))  # imports out of the figure (opening lists nothing)
        start = time.perf_counter()
        names = os.listdir(root)
        bare = time.perf_counter() - start
        start = time.perf_counter()
        listed = list(open_data(str(root)).keys())
        ours = time.perf_counter() - start
    assert len(listed) == len(names) == keys
    return {"keys": keys, "seconds": ours, "listdir_seconds": bare, "ratio": ours / bare if bare else None}


def _stats(values: list[float]) -> dict[str, float]:
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}
