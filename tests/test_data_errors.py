"""Bad data input: one line before the start where it can be known, else the key's error row;
never a traceback, never a lost key. The power column is never a guess. Keys list without reading data."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from sdt_core import SdtError, open_data, run
from sdt_core.analysis import data_inventory
from sdt_core.job.task import process_key
from sdt_core.testing import SECRET, free_port, load_key

STAMPS = pd.date_range("2024-06-01", periods=3 * 288, freq="5min")
INVENTORY = "sdt_core.analysis:data_inventory"


def refused(data, **options) -> str:
    """The one line `sdt run` refuses with, before anything starts (a dry run starts nothing)."""
    with pytest.raises(SdtError) as error:
        run(data if not options else open_data(data, **options), analysis=INVENTORY, dry_run=True)
    return str(error.value)


def test_a_column_named_as_power_wins_over_the_first_numeric_one(tmp_path):
    pd.DataFrame({"ts": STAMPS, "temperature": 25.0, "my_power": 3.5}).to_csv(tmp_path / "a.csv", index=False)
    row = process_key(("a",), open_data(str(tmp_path)), data_inventory)
    assert (row["status"], row["power_column"], row["max_power"]) == ("ok", "my_power", 3.5)


def test_numeric_columns_none_named_as_power_are_refused_before_the_start(tmp_path):
    pd.DataFrame({"ts": STAMPS, "temperature": 25.0, "irradiance": 800.0}).to_csv(tmp_path / "a.csv", index=False)
    assert refused(str(tmp_path)) == (
        "key a: no column is named as power among the numeric columns temperature, irradiance; "
        "set the data option power_column (--data-option power_column=...)"
    )
    assert load_key(open_data(str(tmp_path), power_column="irradiance"), ("a",)).columns.tolist() == ["irradiance"]


def test_two_power_columns_are_refused_before_the_start(tmp_path):
    frame = pd.DataFrame({"timestamp": STAMPS, "ac_power_inv1": 1.0, "ac_power_inv2": 2.0})
    frame.to_parquet(tmp_path / "a.parquet", index=False)
    assert refused(str(tmp_path)).startswith("key a: several columns are named as power: ac_power_inv1, ac_power_inv2")


def test_a_missing_column_or_channel_is_refused_before_the_start(tmp_path):
    (tmp_path / "wide").mkdir()
    pd.DataFrame({"timestamp": STAMPS, "ac_power": 1.0}).to_parquet(tmp_path / "wide" / "a.parquet", index=False)
    assert refused(str(tmp_path / "wide"), power_column="dc_power") == (
        "key a: no power column 'dc_power'; columns: timestamp, ac_power"
    )
    (tmp_path / "long" / "system=7").mkdir(parents=True)
    rows = pd.DataFrame({"timestamp": STAMPS, "channel": "ac_power", "value": 1.0})
    rows.to_parquet(tmp_path / "long" / "system=7" / "part-0.parquet", index=False)
    assert refused(str(tmp_path / "long"), power_column="dc_power") == (
        "key 7: no channel 'dc_power'; channels: ac_power; set the data option power_column "
        "(--data-option power_column=...)"
    )


def test_a_corrupt_file_and_a_system_without_data_are_their_keys_error_rows(tmp_path):
    (tmp_path / "system_id=1").mkdir()
    pd.DataFrame({"timestamp": STAMPS, "ac_power": 1.0}).to_parquet(tmp_path / "system_id=1" / "p.parquet")
    (tmp_path / "system_id=2").mkdir()
    (tmp_path / "system_id=2" / "p.parquet").write_bytes(b"PAR1 not really")
    (tmp_path / "system_id=3").mkdir()  # listed, but empty
    data = open_data(str(tmp_path))
    assert run(data, analysis=INVENTORY, dry_run=True).keys == 3  # key 1 is fine: the run starts
    rows = {key[0]: process_key(key, data, data_inventory) for key in data.keys()}
    assert rows["1"]["status"] == "ok"
    assert (rows["2"]["status"], rows["2"]["stage"]) == ("error", "load")
    assert rows["2"]["error"].startswith("ValueError: not a readable Parquet file:")
    assert rows["3"]["error"] == f"ValueError: no data: {tmp_path}/system_id=3 holds no files"


def test_an_unreachable_endpoint_is_one_line_before_the_start(aws, monkeypatch):
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    started = time.monotonic()
    assert refused("s3://fleet/systems") == (
        f"cannot list s3://fleet/systems: cannot reach the S3 endpoint {endpoint} (EndpointConnectionError): "
        "check AWS_ENDPOINT_URL and the network"
    )
    assert time.monotonic() - started < 60  # seconds, not botocore's minutes of retries


def test_access_denied_is_one_line_before_the_start(azure_blob, monkeypatch):
    from adlfs import AzureBlobFileSystem

    AzureBlobFileSystem().mkdir("fleet")
    wrong = azure_blob.replace("AccountKey=", "AccountKey=" + SECRET.encode().hex())
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", wrong)
    message = refused("az://fleet/systems")
    assert message.startswith("cannot list az://fleet/systems: access denied (")
    assert message.endswith(
        "check the account's credentials (AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_ACCOUNT_KEY or "
        "AZURE_STORAGE_SAS_TOKEN), or anonymous=true for a public container"
    )


def test_credentials_changed_in_the_environment_are_the_ones_used(azure_blob, monkeypatch):
    """fsspec keeps one filesystem per arguments: before, the one made with a wrong key kept being
    used after the right one was set, and every later az:// read in the process was denied."""
    from adlfs import AzureBlobFileSystem

    AzureBlobFileSystem(connection_string=azure_blob).mkdir("fleet")
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azure_blob.replace("AccountKey=", "AccountKey=AAAA"))
    assert refused("az://fleet").startswith("cannot list az://fleet: access denied (")
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azure_blob)
    assert refused("az://fleet").startswith("no data: az://fleet has no CSV or Parquet files")


def test_credentials_in_a_url_are_masked_everywhere(aws, tmp_path, sdt):
    import boto3

    boto3.client("s3").create_bucket(Bucket="fleet")
    url = f"s3://AKIDEXAMPLE:{SECRET}@fleet/systems"
    data = open_data(url)
    assert (data.bucket, data.prefix, data.secret_access_key) == ("fleet", "systems", SECRET)
    assert SECRET not in repr(data) and SECRET not in str(data.public_dict())
    assert refused(url) == "cannot list s3://fleet/systems: no such bucket or prefix (fleet/systems)"
    result = sdt("run", f"s3://AKIDEXAMPLE:{SECRET}@", "--dry-run")
    assert result.returncode == 2 and SECRET not in result.stderr + result.stdout
    assert result.stderr.strip() == "sdt: error: an S3 location needs a bucket: s3://BUCKET/PREFIX"


def test_a_bad_url_that_echoes_its_location_masks_the_credentials():
    from sdt_core.dataplugs import data_registry

    with pytest.raises(SdtError) as error:
        data_registry().open(f"sample://KEY:{SECRET}@x?systems=none")
    assert SECRET not in str(error.value)


def test_keys_of_many_partitions_are_listed_from_folder_names_alone(tmp_path):
    """3,000 systems of tiny files, every file unreadable: listing reads none of them (bench/ measures 100,000)."""
    root = tmp_path / "fleet"
    root.mkdir()
    for system in range(3000):
        folder = root / f"system_id={system}"
        folder.mkdir()
        (folder / "part-0.parquet").write_bytes(b"unreadable")
    started = time.monotonic()
    keys = open_data(str(root)).keys()
    assert time.monotonic() - started < 5
    assert keys[:3] == [("0",), ("1",), ("2",)] and keys[-1] == ("2999",) and len(keys) == 3000


def test_a_long_parquet_file_per_system_is_pivoted_and_its_power_channel_named(tmp_path):
    rows = pd.concat(
        pd.DataFrame({"measured_on": STAMPS, "metric": name, "value": np.full(len(STAMPS), value)})
        for name, value in (("temperature", 30.0), ("ac_power", 4.0))
    )
    rows.to_parquet(tmp_path / "site.parquet", index=False)
    row = process_key(("site",), open_data(str(tmp_path)), data_inventory)
    assert (row["status"], row["power_column"], row["max_power"]) == ("ok", "ac_power", 4.0)
