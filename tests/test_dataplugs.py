"""Data plugs: discovery by URL scheme, the CSV directory plug, frames, the sample set."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest

from sdt_core import DataPlug, SdtError, SettingsError, list_data_plugs, open_data, setting
from sdt_core.dataplugs.frames import check_span, power_frame, read_power_csv
from sdt_core.dataplugs.local import LocalFiles
from sdt_core.dataplugs.sample import REAL_SYSTEMS, SampleData, real_sample_file, synthetic_system
from sdt_core.errors import UnknownPlugError

DAYS_5MIN = pd.date_range("2024-06-01", periods=3 * 288, freq="5min")


def wide_csv(path, **columns):
    frame = pd.DataFrame({"timestamp": DAYS_5MIN, **columns})
    frame.to_csv(path, index=False)
    return path


def test_built_in_data_plugs_are_discovered_like_third_party_ones():
    plugs = {p.name: p for p in list_data_plugs()}
    built_in = ("file", "csv", "parquet", "s3", "az", "abfs", "pvdaq", "sample")
    assert set(built_in) <= set(plugs)
    assert all(plugs[n].status == "ok" and plugs[n].distribution == "sdt-core" for n in built_in)
    assert {s.name for s in plugs["file"].settings} == {
        *("path", "format", "ext", "system_column", "timestamp_column", "power_column"),
        *("channel_column", "value_column", "time_zone"),
    }


def test_a_directory_or_url_opens_the_plug_of_its_scheme(tmp_path):
    assert isinstance(open_data(str(tmp_path)), LocalFiles)
    sample = open_data("sample://?systems=3&days=10&real=false")
    assert isinstance(sample, SampleData) and (sample.systems, sample.days, sample.real) == (3, 10, False)
    with pytest.raises(UnknownPlugError, match=r"unknown data plug 'gs'; installed data plugs: .*file.*s3"):
        open_data("gs://bucket/prefix")
    with pytest.raises(SettingsError, match=r"plug 'sample': systems must be an integer, got the string 'x'"):
        open_data("sample://?systems=x")


def test_a_missing_directory_is_one_clear_line(tmp_path):
    with pytest.raises(SettingsError, match=f"data directory {tmp_path}/nope does not exist"):
        open_data(str(tmp_path / "nope"))


def test_wide_files_give_the_first_numeric_column_or_the_named_one(tmp_path):
    wide_csv(tmp_path / "a.csv", site=["x"] * len(DAYS_5MIN), ac_power=np.arange(864.0), dc=np.ones(864))
    plug = open_data(str(tmp_path))
    assert plug.keys() == [("a",)]
    frame = plug.get_data(("a",))
    assert list(frame.columns) == ["ac_power"] and isinstance(frame.index, pd.DatetimeIndex)
    assert frame.index.is_monotonic_increasing and frame["ac_power"].iloc[-1] == 863.0
    assert list(open_data(str(tmp_path), power_column="dc").get_data(("a",)).columns) == ["dc"]


def test_the_timestamp_column_is_found_by_content_when_not_by_name(tmp_path):
    pd.DataFrame({"when": DAYS_5MIN.astype(str), "kw": np.ones(864)}).to_csv(tmp_path / "b.csv", index=False)
    frame = open_data(str(tmp_path)).get_data(("b",))
    assert frame.index[0] == DAYS_5MIN[0] and list(frame.columns) == ["kw"]


def test_compressed_files_by_their_ending(tmp_path):
    with gzip.open(tmp_path / "c.csv.gz", "wt") as out:
        pd.DataFrame({"ts": DAYS_5MIN, "p": np.ones(864)}).to_csv(out, index=False)
    plug = open_data(str(tmp_path), ext=".csv.gz")
    assert plug.keys() == [("c",)] and len(plug.get_data(("c",))) == 864


def test_the_long_vader_format_of_the_sample_files():
    frame = read_power_csv(str(real_sample_file("TAEFC1044741")))
    assert frame.shape == (34582, 1) and isinstance(frame.index, pd.DatetimeIndex)
    assert frame.index.is_unique  # not the non-unique site index that makes SDT allocate 9.77 GiB


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (b"\x00\x01\x02garbage\xff\xfe", "not a readable CSV file"),
        (b"a,b\n1,2\n3,4\n", "no timestamp column: none of a, b holds dates; set timestamp_column"),
        (b"timestamp,name\n2024-01-01 00:00,x\n2024-01-02 00:00,y\n", "no power column: none of name is numeric"),
        (b"", "not a readable CSV file: No columns to parse from file"),
    ],
    ids=["corrupt", "no-timestamp", "no-power", "empty"],
)
def test_unreadable_files_say_why(tmp_path, content, error):
    (tmp_path / "bad.csv").write_bytes(content)
    with pytest.raises(ValueError, match=error):
        open_data(str(tmp_path)).get_data(("bad",))


def test_under_a_day_of_data_is_refused():
    short = power_frame(pd.DataFrame({"p": np.ones(100)}, index=DAYS_5MIN[:100]))
    with pytest.raises(ValueError, match=r"under a day of data: 100 values over 0 days 08:15:00"):
        check_span(short)
    check_span(power_frame(pd.DataFrame({"p": np.ones(864)}, index=DAYS_5MIN)))


def test_an_original_style_frame_with_a_timestamp_column_is_accepted():
    frame = power_frame(pd.DataFrame({"timestamp": DAYS_5MIN, "power": np.ones(864)}))
    assert isinstance(frame.index, pd.DatetimeIndex) and list(frame.columns) == ["power"]


def test_the_sample_set_has_the_real_files_and_deterministic_synthetic_systems():
    assert SampleData(systems=2).keys() == [*((n,) for n in REAL_SYSTEMS), ("synthetic-000",), ("synthetic-001",)]
    first, again, other = synthetic_system(0, 60), synthetic_system(0, 60), synthetic_system(1, 60)
    pd.testing.assert_frame_equal(first, again)
    assert not first["ac_power"].equals(other["ac_power"])


def test_synthetic_systems_have_gaps_clipping_and_a_time_shift():
    system = synthetic_system(0, 120)["ac_power"]
    assert len(system) < 120 * 288  # gaps
    clipped_at = system.max()
    assert (system == clipped_at).sum() > 50  # an even index clips at its inverter's limit
    unclipped = synthetic_system(1, 120)["ac_power"]
    assert (unclipped == unclipped.max()).sum() < 5
    daily_peak = system.groupby(system.index.date).idxmax().map(lambda t: t.hour + t.minute / 60)
    assert daily_peak.diff().abs().max() >= 0.9  # the clock jumps by an hour and back


def test_sample_data_command_writes_files_the_csv_plug_reads(sdt, tmp_path):
    result = sdt("sample-data", str(tmp_path / "systems"), "--systems", "2", "--days", "3")
    assert result.returncode == 0 and "2 systems of 3 days" in result.stdout
    plug = open_data(str(tmp_path / "systems"))
    assert plug.keys() == [("synthetic-000",), ("synthetic-001",)]
    pd.testing.assert_frame_equal(
        plug.get_data(("synthetic-001",)), synthetic_system(1, 3), check_freq=False, check_index_type=False
    )


def test_a_data_plug_that_cannot_list_its_keys_is_one_line(tmp_path):
    from sdt_core.job.runner import _keys

    with pytest.raises(SdtError, match=rf"no data: {tmp_path} has no CSV or Parquet files; give a folder of them"):
        _keys(open_data(str(tmp_path)), None, None)


def load_key(data, key):
    from sdt_core.testing import load_key

    return load_key(data, key)


class Table(DataPlug):
    """A third party's data plug that returns its table as it is and leaves the rest to core."""

    power_column: str | None = setting(None, "Power column.")
    time_zone: str | None = setting(None, "Time zone of the site.")

    def keys(self):
        return [("t",)]

    def get_data(self, key):
        stamps = pd.date_range("2024-06-01", periods=3 * 288, freq="5min", tz="UTC")
        return pd.DataFrame({"timestamp": stamps, "irradiance": 900.0, "ac_power": 4.5})


class Bare(DataPlug):
    """A data plug that declares none of the options core applies."""

    def keys(self):
        return [("b",)]

    def get_data(self, key):
        return pd.DataFrame({"timestamp": DAYS_5MIN, "name": "x"})


def test_core_applies_the_declared_power_column_and_time_zone():
    assert list(load_key(Table(), ("t",)).columns) == ["ac_power"]  # no option given: the one named as power
    frame = load_key(Table(power_column="ac_power", time_zone="Etc/GMT+7"), ("t",))
    assert list(frame.columns) == ["ac_power"] and frame["ac_power"].iloc[0] == 4.5
    assert frame.index[0] == pd.Timestamp("2024-05-31 17:00", tz="Etc/GMT+7")


def test_the_worker_task_applies_them_too():
    from sdt_core.analysis import data_inventory
    from sdt_core.job.task import process_key

    row = process_key(("t",), Table(power_column="ac_power"), data_inventory)
    assert (row["status"], row["max_power"]) == ("ok", 4.5)


def test_a_load_error_names_only_an_option_the_plug_has():
    no_power = pd.DataFrame({"timestamp": DAYS_5MIN, "name": "x"})
    with pytest.raises(ValueError) as error:
        load_key(Bare(), ("b",))
    assert (
        str(error.value) == "no power column: none of name is numeric (Bare has no power_column option to choose one)"
    )
    Table.get_data = lambda self, key: no_power  # the same table from a plug that has the option
    try:
        with pytest.raises(ValueError) as error:
            load_key(Table(), ("t",))
    finally:
        del Table.get_data
    assert str(error.value) == (
        "no power column: none of name is numeric; set the data option power_column (--data-option power_column=...)"
    )


def test_a_bad_time_zone_is_one_line_before_anything_is_read(tmp_path):
    with pytest.raises(SettingsError) as error:
        open_data(str(tmp_path), time_zone="Mars/Olympus")
    assert str(error.value) == (
        "data plug 'file': time_zone 'Mars/Olympus' is not a time zone; give an IANA name such as America/Denver "
        "or Etc/GMT+7"
    )


def test_list_options_in_the_url_are_typed_as_a_user_types_them():
    assert open_data("sample://?lengths=3,4&real=no").lengths == [3, 4]
    assert open_data(plug="sample", lengths=[5]).keys() == [*((n,) for n in REAL_SYSTEMS), *(
        (f"synthetic-{i:03d}",) for i in range(4))]  # fmt: skip


@pytest.mark.parametrize(
    ("args", "lines"),
    [
        (
            ["info", "sample"],
            [
                "sample: SDT's two real sample files plus deterministic synthetic systems (no files needed). "
                "(sdt-core 0.1.0)",
                "lengths  list[int]  []       Days of each synthetic system in turn, repeated "
                "(default: `days` for all).",
                "Data: sdt run sample://?OPTION=VALUE, or sdt run --data sample [LOCATION] --data-option OPTION=VALUE.",
            ],
        ),
        (
            ["info", "file"],
            [
                "OPTION            TYPE        DEFAULT  HELP",
                "LOCATION: The folder: `sdt run DIR`, or `file://DIR`.",
            ],
        ),
        (
            ["info", "--data", "s3"],
            [
                "LOCATION: BUCKET/PREFIX: the bucket, and the folder of the data in it "
                "(KEY:SECRET@BUCKET/PREFIX also works)."
            ],
        ),
    ],
)
def test_sdt_info_shows_a_data_plugs_options(sdt, args, lines):
    result = sdt(*args)
    assert result.returncode == 0, result.stderr
    for line in lines:
        assert line in result.stdout.splitlines(), result.stdout
