"""`pvdaq://`: the public PVDAQ fleet, read from a miniature of its layout served by moto's S3 API.

One moto server (the session's), one miniature lake and one 2-worker cluster for the module.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from sdt_core import SdtError, open_data, run
from tests.pvdaq_lake import NO_DATA, SYSTEMS, power_csv, served
from tests.test_data_sources import FIELDS, INVENTORY, attached_cluster

COMPARED = [f for f in FIELDS if f != "power_column"]


@pytest.fixture(scope="module")
def lake(moto_server):
    """The miniature in moto's `oedi-data-lake`; this process and the cluster's workers point at moto."""
    with pytest.MonkeyPatch.context() as env:
        for name, value in {
            "AWS_ENDPOINT_URL": moto_server,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-west-2",
        }.items():
            env.setenv(name, value)
        env.delenv("AWS_PROFILE", raising=False)
        with served(moto_server):
            yield moto_server


@pytest.fixture(scope="module")
def cluster(lake):
    """One 2-worker cluster for the module; its workers inherit the lake's environment."""
    with attached_cluster() as plug:
        yield plug


def rows_of(cluster, data, out, **kwargs) -> dict[str, dict]:
    run(data, plug=cluster, out=out, analysis=INVENTORY, **kwargs)
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    return {str(row["key"][0]): row for row in rows}


def test_keys_are_the_systems_with_time_series_listed_from_the_index_and_folder_names(lake):
    plug = open_data("pvdaq://")
    assert plug.keys() == [(s,) for s in sorted(SYSTEMS)]  # 7 has a row in the index but no time series
    assert open_data("pvdaq://?systems=10,2").keys() == [(10,), (2,)]
    assert plug.index().loc[2, "system_public_name"] == "Lab array"  # the newest index; two rows of 2 merged


def test_a_system_reads_its_ac_power_by_local_time_without_sentinels(lake):
    frame = open_data("pvdaq://").get_data((2,))
    assert list(frame.columns) == ["ac_power"]
    assert frame["ac_power"].min() >= 0  # -999 and -7999 dropped
    assert not frame.index.has_duplicates and frame.index.is_monotonic_increasing
    spring = frame.loc["2023-03-12 01:00":"2023-03-12 04:00"].index  # DST: 02:00-02:59 local do not exist
    assert not any(t.hour == 2 for t in spring) and len(spring) == 9
    ten = open_data("pvdaq://?years=2022").get_data((10,))  # only the 2022 partitions; 100 is not 10
    assert ten.index.min() == pd.Timestamp("2022-01-01") and ten["pac"].max() < 3200


def test_two_ac_power_metrics_are_never_a_guess(lake):
    plug = open_data("pvdaq://")
    with pytest.raises(ValueError, match=r"2 AC power metrics .*inv1_ac_power \(200\).*power_channel"):
        plug.get_data((4,))
    assert list(open_data("pvdaq://", power_channel="201").get_data((4,)).columns) == ["inv2_ac_power"]
    by_name = open_data("pvdaq://?power_channel=Inverter 1 AC Power").get_data((4,))
    assert list(by_name.columns) == ["inv1_ac_power"]
    with pytest.raises(ValueError, match=r"no metric 'wind'.*inv1_ac_power"):
        open_data("pvdaq://", power_channel="wind").get_data((4,))


def test_metadata_comes_from_the_systems_index(lake):
    plug = open_data("pvdaq://")
    assert plug.metadata((2,)) == {
        "name": "Lab array",
        "latitude": 39.74,
        "longitude": -105.18,
        "elevation_m": 102.0,
        "dc_capacity_kw": 5.0,
        "time_zone": "America/Denver",
        "first_timestamp": "2023-03-09",
        "last_timestamp": "2023-03-15 00:00:00",
    }
    assert plug.metadata((4,))["time_zone"] == "Etc/GMT+5"  # the index's bare offset -5


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("pvdaq://?systems=2,99", "no PVDAQ system 99 in the systems index"),
        (f"pvdaq://?systems={NO_DATA}", f"PVDAQ system {NO_DATA} has no time series"),
        ("pvdaq://?bucket=elsewhere", "cannot read the PVDAQ data lake at s3://elsewhere/pvdaq: no such bucket"),
        ("pvdaq://?prefix=nothing", "at s3://oedi-data-lake/nothing: no such bucket or folder"),
    ],
)
def test_bad_systems_and_places_are_one_line_before_the_start(lake, url, message):
    with pytest.raises(SdtError, match=message) as error:
        open_data(url).keys()
    assert "\n" not in str(error.value)


def test_an_unreachable_endpoint_is_one_line(lake, monkeypatch):
    from sdt_core.testing import free_port

    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    with pytest.raises(SdtError, match=r"cannot reach the S3 endpoint http://127\.0\.0\.1:") as error:
        open_data("pvdaq://?systems=2").keys()
    assert "\n" not in str(error.value)


def test_a_pvdaq_run_gives_the_rows_of_the_same_data_as_csv_with_metadata(cluster, tmp_path):
    folder = tmp_path / "csv"
    folder.mkdir()
    for system in (2, 10):
        power_csv(system, folder / f"{system}.csv")
    csv = rows_of(cluster, open_data(str(folder)), tmp_path / "csv-out", report=False)
    pvdaq = rows_of(cluster, open_data("pvdaq://?systems=2,10,4"), tmp_path / "pvdaq-out", report=True)
    for system in ("2", "10"):
        assert {f: pvdaq[system].get(f) for f in COMPARED} == {f: csv[system].get(f) for f in COMPARED}
        assert pvdaq[system]["status"] == "ok"
    assert pvdaq["2"]["meta_latitude"] == 39.74 and pvdaq["2"]["meta_time_zone"] == "America/Denver"
    assert pvdaq["4"]["status"] == "error" and "power_channel" in pvdaq["4"]["error"]  # the key's row, not lost
    assert pvdaq["4"]["meta_name"] == "Two inverters"  # a failed key keeps its metadata
    summary = pd.read_csv(tmp_path / "pvdaq-out" / "summary.csv").set_index("key_field_0")
    assert summary.loc[10, "meta_longitude"] == -122.1
    page = (tmp_path / "pvdaq-out" / "report.html").read_text()
    assert "sdt-fleet-map" in page
