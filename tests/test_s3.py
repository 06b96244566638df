"""The S3 data plug against a real AWS API: moto in server mode, started by the tests."""

from __future__ import annotations

import io

import boto3
import numpy as np
import pandas as pd
import pytest

from sdt_core import SdtError, open_data, run

DAYS = pd.date_range("2024-06-01", periods=2 * 288, freq="5min")


def put_csv(s3, bucket: str, name: str, scale: float) -> None:
    body = io.StringIO()
    pd.DataFrame({"timestamp": DAYS, "ac_power": scale * np.ones(len(DAYS))}).to_csv(body, index=False)
    s3.put_object(Bucket=bucket, Key=name, Body=body.getvalue().encode())


@pytest.fixture
def bucket(aws):
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="pv-data")
    put_csv(s3, "pv-data", "systems/site-a.csv", 1.0)
    put_csv(s3, "pv-data", "systems/site-b.csv", 2.0)
    put_csv(s3, "pv-data", "systems/readme.txt", 0.0)
    put_csv(s3, "pv-data", "systems-old/site-z.csv", 9.0)
    return "pv-data"


def test_keys_are_the_csv_objects_under_the_prefix_folder(bucket):
    plug = open_data(f"s3://{bucket}/systems")
    assert (plug.bucket, plug.prefix) == ("pv-data", "systems")
    assert plug.keys() == [("site-a",), ("site-b",)]
    assert open_data(f"s3://{bucket}/systems-old").keys() == [("site-z",)]  # systems/ is not systems-old/
    with pytest.raises(SdtError, match=r"^no data: s3://pv-data has no CSV or Parquet files"):
        open_data(f"s3://{bucket}").keys()  # the bucket's first level: folders only, no files


def test_get_data_reads_an_object_as_a_power_frame(bucket):
    frame = open_data(f"s3://{bucket}/systems/").get_data(("site-b",))
    assert list(frame.columns) == ["ac_power"] and len(frame) == len(DAYS) and frame["ac_power"].max() == 2.0


def test_a_run_reads_s3_from_the_workers(bucket, tmp_path):
    summary = run(
        f"s3://{bucket}/systems",
        settings={"workers": 2, "threads": 1, "memory": 1, "dashboard_address": "127.0.0.1:0"},
        out=tmp_path / "out",
        analysis="sdt_core.analysis:data_inventory",
        report=False,
    )
    table = pd.read_csv(summary.summary_csv).set_index("key_field_0")
    assert (summary.ok, summary.failed) == (2, 0)
    assert table.loc["site-b", "max_power"] == 2.0 and table.loc["site-a", "status"] == "ok"


def test_a_missing_bucket_is_one_line_before_anything_starts(aws, tmp_path):
    with pytest.raises(SdtError, match=r"cannot list s3://no-such-bucket/x: no such bucket or prefix"):
        run("s3://no-such-bucket/x", out=tmp_path / "out", analysis="sdt_core.analysis:data_inventory")
    assert not (tmp_path / "out").exists()


def test_an_s3_url_needs_a_bucket():
    with pytest.raises(SdtError, match=r"an S3 location needs a bucket: s3://BUCKET/PREFIX"):
        open_data("s3://")
