"""Reading one system of a partitioned Parquet dataset (sdt_core.dataplugs.datasets)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from sdt_core.dataplugs.datasets import partition_of, read_long_system, read_system

STAMPS = pd.date_range("2021-12-30", "2022-01-03", freq="15min")


def long_rows(system: int, metrics=(5, 7)) -> pd.DataFrame:
    return pd.concat(
        pd.DataFrame({"system_id": system, "measured_on": STAMPS, "metric_id": m, "value": np.arange(len(STAMPS)) * m})
        for m in metrics
    )


@pytest.fixture
def fleet(tmp_path):
    """A long dataset partitioned as system_id=N/year=YYYY/, as PVDAQ's is (less month and day)."""
    rows = pd.concat([long_rows(4), long_rows(12), long_rows(120)])
    rows["year"] = rows["measured_on"].dt.year
    ds.write_dataset(
        pa.Table.from_pandas(rows, preserve_index=False),
        tmp_path / "fleet",
        format="parquet",
        partitioning=["system_id", "year"],
        partitioning_flavor="hive",
    )
    return tmp_path / "fleet"


def test_one_system_comes_back_pivoted_one_column_per_channel(fleet):
    wide = read_long_system(str(fleet), "12")
    assert list(wide.columns) == ["5", "7"] and wide.index.is_monotonic_increasing
    assert len(wide) == len(STAMPS) and wide["7"].iloc[3] == 21
    assert isinstance(wide.index, pd.DatetimeIndex) and wide.index.name == "measured_on"


def test_only_the_systems_own_partition_is_read(fleet):
    for other in (fleet / "system_id=120").rglob("*.parquet"):
        other.write_bytes(b"not parquet")  # system 120 (a prefix match of 12) is broken: never opened
    assert len(read_long_system(str(fleet), 12)) == len(STAMPS)
    with pytest.raises(ValueError, match="not a readable Parquet file"):
        read_long_system(str(fleet), 120)


def test_channels_and_years_filter_typed_as_the_columns(fleet):
    wide = read_long_system(str(fleet), "12", channels=["7"], years=[2022])
    assert list(wide.columns) == ["7"] and wide.index.min() == pd.Timestamp("2022-01-01")
    with pytest.raises(ValueError, match="no data: system 12 has no partition of the years 1999"):
        read_long_system(str(fleet), "12", years=[1999])
    with pytest.raises(ValueError, match="no data: system 12 has no rows of channels 9"):
        read_long_system(str(fleet), "12", channels=[9])


def test_a_system_column_instead_of_a_partition(tmp_path):
    rows = pd.concat([long_rows(4), long_rows(12, metrics=(5,))])
    rows.to_parquet(tmp_path / "all.parquet", index=False, row_group_size=len(STAMPS))
    wide = read_long_system(str(tmp_path), "12", partitioned=False)
    assert list(wide.columns) == ["5"] and len(wide) == len(STAMPS)
    assert read_system(str(tmp_path), 4, ["value"], partitioned=False).num_rows == 2 * len(STAMPS)


def test_partition_folder_names():
    assert partition_of("system_id=12") == ("system_id", "12")
    assert partition_of("site=a%20b") == ("site", "a b")
    assert partition_of("readme.txt") is None and partition_of("_common_metadata") is None
