"""The columnar CSV ExampleGen: TFX's types and bytes, batch by batch, and the same splits."""

import os

import pyarrow as pa
import pytest
import tensorflow as tf
from tfx.components.example_gen.csv_example_gen import executor as tfx_csv
from tfx_bsl.coders import csv_decoder

from benchmarks.examplegen import run_executor, split_contents
from components.example_gen import csv_convert, csv_executor
from components.example_gen.stable_write import TEMP_DIR
from tests.components.example_gen.tiny_runs import example_features
from tests.conftest import TINY_CSV

T = csv_decoder.ColumnType

# Cells TFX types by Python's int() and float(): Arrow decides most, the rest fall back.
TYPE_CASES = {
    "ints": (["1", "-2", "+3", "007"], T.INT),
    "ints with blanks": (["1", "", "3"], T.INT),
    "padded and underscored ints": ([" 5", "1_000"], T.INT),
    "ints and floats": (["1", "2.5"], T.FLOAT),
    "floats in every notation": (["1e5", ".5", "-0.0", "nan", "inf"], T.FLOAT),
    "int beyond int64": (["99999999999999999999"], T.STRING),
    "floats and an int beyond int64": (["2.5", "99999999999999999999"], T.STRING),
    "strings": (["Cash", "1"], T.STRING),
    "empty": (["", ""], T.UNKNOWN),
}


def _tfx_type(cells):
    inferrer = csv_decoder.ColumnTypeInferrer(["c"], skip_blank_lines=True)
    accumulator = inferrer.create_accumulator()
    for cell in cells:
        accumulator = inferrer.add_input(accumulator, [cell.encode()])
    return inferrer.extract_output(accumulator)[0].type


@pytest.mark.parametrize("case", TYPE_CASES)
def test_column_type_is_tfx_bsls(case):
    cells, expected = TYPE_CASES[case]
    assert _tfx_type(cells) == expected  # the table states TFX's rule
    assert csv_convert.column_type(pa.array(cells, pa.string())) == expected


def test_types_merge_to_the_widest():
    assert csv_convert.merge_types([{"a": T.INT, "b": T.UNKNOWN}, {"a": T.FLOAT, "b": T.INT}, {"a": T.INT}]) == {
        "a": T.FLOAT,
        "b": T.INT,
    }


EDGE_CSV = 'id,fare,company,note,never\n1,2.5,"Cab, Inc.","two\nlines",\n\n2,,Ünïcode Cabs,,\n3,7,,plain,\n'


def _tfx_examples(records, column_names):
    """What TFX's own DoFns make of the records: its parser, type inference and conversion."""
    parser = csv_decoder.ParseCSVLine(delimiter=",")
    parser.setup()
    rows = [next(iter(parser.process(record)))[0] for record in records]
    inferrer = csv_decoder.ColumnTypeInferrer(column_names, skip_blank_lines=True)
    accumulator = inferrer.create_accumulator()
    for row in rows:
        accumulator = inferrer.add_input(accumulator, row)
    infos = inferrer.extract_output(accumulator)
    to_example = tfx_csv._ParsedCsvToTfExample()  # pylint: disable=protected-access
    return [e.SerializeToString(deterministic=True) for row in rows for e in to_example.process(row, infos)]


def _ours(records, column_names):
    columns = csv_convert.parse(records, column_names)
    types = csv_convert.infer_types(columns, column_names)
    return csv_convert.to_examples(columns, column_names, types)


@pytest.mark.parametrize("text", [TINY_CSV.read_text(), EDGE_CSV], ids=["taxi_tiny", "edge_cases"])
def test_examples_are_byte_identical_to_tfxs(tmp_path, text):
    path = tmp_path / "data.csv"
    path.write_text(text)
    names = text.split("\n", 1)[0].split(",")
    records = [r for batch in csv_convert.read_record_batches(str(path), 1000) for r in batch]
    expected = _tfx_examples(records, names)
    assert expected and _ours(records, names) == expected


def test_edge_case_features():
    names = ["id", "fare", "company", "note", "never"]
    records = ['1,2.5,"Cab, Inc.","two\nlines",\n', "2,,x,,\n"]
    first, second = (tf.train.Example.FromString(e).features.feature for e in _ours(records, names))
    assert first["company"].bytes_list.value == [b"Cab, Inc."]
    assert first["note"].bytes_list.value == [b"two\nlines"]
    assert first["fare"].float_list.value == [2.5]
    assert second["fare"].WhichOneof("kind") == "float_list" and not second["fare"].float_list.value
    assert second["never"].WhichOneof("kind") is None  # no value in any row: no type at all


def test_quoted_line_breaks_stay_in_one_record(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text(EDGE_CSV)
    batches = list(csv_convert.read_record_batches(str(path), 2))
    assert [len(b) for b in batches] == [2, 2]
    assert batches[0][0] == '1,2.5,"Cab, Inc.","two\nlines",\n'


def test_a_record_with_the_wrong_field_count_is_named():
    with pytest.raises(ValueError, match=r"has 2 fields but the header has 3 \(a, b, c\)"):
        csv_convert.parse(["1,2,3\n", "4,5\n"], ["a", "b", "c"])


def _run(executor_class, input_base, output_uri):
    run_executor(executor_class, input_base, output_uri, {"train": 3, "eval": 1}, ["--direct_running_mode=in_memory"])
    return split_contents(output_uri, ("train", "eval"))


def test_executor_writes_tfxs_examples_into_tfxs_splits(tmp_path, csv_in_two_files):
    data, lines = csv_in_two_files(50)
    ours = _run(csv_executor.Executor, str(data), str(tmp_path / "ours"))
    tfx = _run(tfx_csv.Executor, str(data), str(tmp_path / "tfx"))
    assert len(ours["train"]) + len(ours["eval"]) == len(lines) - 1
    assert ours["eval"] and ours == tfx
    assert not os.path.exists(tmp_path / "ours" / TEMP_DIR)  # the bucket files are removed


def test_missing_value_markers_are_empty_cells_of_every_type():
    names = ["n", "x", "s"]
    records = ["1,2.5,a\n", "NA,N/A,null\n", " NaN ,,b\n"]
    columns = csv_convert.parse(records, names, missing_values=["", "NA", "N/A", "NaN", "null"])
    assert [c.to_pylist() for c in columns] == [["1", "", ""], ["2.5", "", ""], ["a", "", "b"]]
    assert csv_convert.infer_types(columns, names) == {"n": T.INT, "x": T.FLOAT, "s": T.STRING}
    first, second, _ = (
        tf.train.Example.FromString(e).features.feature
        for e in csv_convert.to_examples(columns, names, csv_convert.infer_types(columns, names))
    )
    assert second["n"].WhichOneof("kind") == "int64_list" and not second["n"].int64_list.value
    assert second["s"].WhichOneof("kind") == "bytes_list" and not second["s"].bytes_list.value
    # Without markers the same cells are text, as TFX reads them.
    assert csv_convert.infer_types(csv_convert.parse(records, names), names)["n"] == T.STRING


def test_rows_missing_a_required_column_are_dropped():
    columns = csv_convert.parse(
        ["1,a\n", "NA,b\n", ",c\n", "4,d\n"], ["y", "s"], missing_values=["", "NA"], required=["y"]
    )
    assert [c.to_pylist() for c in columns] == [["1", "4"], ["a", "d"]]


def test_rows_outside_a_columns_allowed_values_are_dropped():
    columns = csv_convert.parse(
        ["Cash,1\n", " Pcard ,2\n", "Credit Card ,3\n", ",4\n", "NA,5\n"],
        ["y", "n"],
        missing_values=["", "NA"],
        allowed={"y": ["Cash", "Credit Card"]},
    )
    assert [c.to_pylist() for c in columns] == [["Cash", "Credit Card "], ["1", "3"]]


def test_executor_reads_a_directory_of_plain_and_gzipped_csv(tmp_path):
    import gzip

    from pipeline.config import DataFormat
    from pipeline.data_files import directory_pattern

    lines = TINY_CSV.read_text().splitlines(keepends=True)
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.csv").write_text("".join(lines[:30]))
    (data / "b.csv.gz").write_bytes(gzip.compress((lines[0] + "".join(lines[30:])).encode()))
    pattern = directory_pattern(DataFormat.CSV, str(data))
    assert pattern == "*.csv*"
    run_executor(
        csv_executor.Executor,
        str(data),
        str(tmp_path / "out"),
        {"train": 3, "eval": 1},
        ["--direct_running_mode=in_memory"],
        pattern=pattern,
    )
    splits = split_contents(str(tmp_path / "out"), ("train", "eval"))
    assert len(splits["train"]) + len(splits["eval"]) == len(lines) - 1


def test_header_names_drop_a_byte_order_mark_and_spaces():
    assert csv_convert.header_names('\ufeffa, b ,"c"\r\n') == ["a", "b", "c"]


def test_executor_reads_markers_gzip_and_a_byte_order_mark_and_drops_unlabelled_rows(tmp_path):
    import gzip

    from components.example_gen.options import custom_config

    lines = TINY_CSV.read_text().splitlines(keepends=True)
    header = lines[0].split(",")
    fare, tips = header.index("fare"), header.index("tips\n")
    rows = [line.split(",") for line in lines[1:]]
    for i, row in enumerate(rows):
        if i % 4 == 0:
            row[fare] = "NA"
        if i % 10 == 0:
            row[tips] = "NA\n"
    data = tmp_path / "data"
    data.mkdir()
    with gzip.open(data / "data.csv.gz", "wt", encoding="utf-8-sig") as f:
        f.write(lines[0] + "".join(",".join(row) for row in rows))
    examples = example_features(
        csv_executor.Executor,
        data,
        tmp_path / "out",
        "*.csv.gz",
        custom_config(["", "NA"], ["tips"]),
    )
    assert len(examples) == len(rows) - len(rows[::10])
    assert "pickup_community_area" in examples[0]  # the first column, without the mark
    assert all(e["fare"].WhichOneof("kind") == "float_list" for e in examples)
    assert sum(not e["fare"].float_list.value for e in examples) == len(rows[::4]) - len(rows[::20])


def test_executor_keys_each_column_by_its_feature_key(tmp_path):
    from components.example_gen.options import custom_config

    data = tmp_path / "data"
    data.mkdir()
    rows = "".join(f"{i * 0.5},{'ab'[i % 2]},{i},{i % 3},{'?' if i % 5 == 0 else i % 2}\n" for i in range(40))
    (data / "d.csv").write_text("île,trip miles-x,2nd value,a.b,label\n" + rows, encoding="utf-8")
    examples = example_features(
        csv_executor.Executor,
        data,
        tmp_path / "out",
        "*.csv",
        custom_config(["", "?"], ["label"]),  # options name columns by key, as the config does
    )
    assert len(examples) == 40 - 8  # the rows with a '?' label dropped
    assert set(examples[0]) == {"ile", "trip_miles_x", "c_2nd_value", "a_b", "label"}
    assert {e["trip_miles_x"].bytes_list.value[0] for e in examples} == {b"a", b"b"}
    assert all(e["ile"].WhichOneof("kind") == "float_list" for e in examples)


def test_executor_refuses_two_columns_of_one_feature_key(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "d.csv").write_text("trip miles,trip-miles\n1,2\n")
    with pytest.raises(Exception, match=r"columns 'trip miles' and 'trip-miles' of .*d.csv both become"):
        run_executor(
            csv_executor.Executor,
            str(data),
            str(tmp_path / "out"),
            {"train": 1},
            ["--direct_running_mode=in_memory"],
            pattern="*.csv",
        )
