"""The Parquet executor: missing-value markers in string columns, and the label's row filters."""

import pyarrow as pa
import pyarrow.parquet as pq

from components.example_gen import parquet_executor
from components.example_gen.options import custom_config
from tests.components.example_gen.tiny_runs import example_features


def test_clean_row_reads_marker_strings_as_missing_and_filters_rows():
    markers = ["", "NA", "null"]
    assert parquet_executor.clean_row({"s": " NA ", "b": b"null", "x": 0.5, "n": 3}, markers) == {
        "s": None,
        "b": None,
        "x": 0.5,
        "n": 3,
    }
    assert parquet_executor.clean_row({"s": "NAB", "x": None}, markers) == {"s": "NAB", "x": None}
    assert parquet_executor.clean_row({"y": "NA", "x": 1.0}, markers, required=["y"]) is None
    allowed = {"y": ["Cash", "Credit Card"]}
    assert parquet_executor.clean_row({"y": "Pcard"}, markers, allowed=allowed) is None
    assert parquet_executor.clean_row({"y": b"Cash "}, markers, allowed=allowed) == {"y": b"Cash "}
    # Without options the row is as TFX's executor reads it.
    assert parquet_executor.clean_row({"s": "NA"}) == {"s": "NA"}


def test_executor_writes_markers_as_missing_and_drops_filtered_rows(tmp_path):
    rows = 60
    table = pa.table(
        {
            "payment": ["NA" if i % 10 == 0 else "Pcard" if i % 15 == 1 else "Cash" for i in range(rows)],
            "company": ["N/A" if i % 3 == 0 else f"c{i % 4}" for i in range(rows)],
            "miles": [float(i) for i in range(rows)],
        }
    )
    data = tmp_path / "data"
    data.mkdir()
    pq.write_table(table, data / "trips.parquet")
    examples = example_features(
        parquet_executor.Executor,
        data,
        tmp_path / "out",
        "*.parquet",
        custom_config(["", "NA", "N/A"], ["payment"], {"payment": ["Cash", "Credit Card"]}),
    )
    kept = [i for i in range(rows) if i % 10 and i % 15 != 1]
    assert len(examples) == len(kept)
    assert all(e["payment"].bytes_list.value == [b"Cash"] for e in examples)
    assert sum(not e["company"].bytes_list.value for e in examples) == len([i for i in kept if i % 3 == 0])
    assert not any(b"N/A" in e["company"].bytes_list.value for e in examples)


def test_executor_keys_each_column_by_its_feature_key(tmp_path):
    rows = 40
    table = pa.table({"île": [float(i) for i in range(rows)], "2nd value": [f"v{i % 3}" for i in range(rows)]})
    data = tmp_path / "data"
    data.mkdir()
    pq.write_table(table, data / "d.parquet")
    examples = example_features(parquet_executor.Executor, data, tmp_path / "out", "*.parquet")
    assert len(examples) == rows
    assert all(set(e) == {"ile", "c_2nd_value"} for e in examples)
