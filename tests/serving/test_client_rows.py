"""The client's rows (serving/client.py): read as ExampleGen reads training data (header names,
missing-value markers) and keyed as the model's inputs are (contracts/column_names.py)."""

import pytest

from serving.client import ClientError, example_protos, read_rows

TYPES = {"ile": "DT_FLOAT", "trip_miles_x": "DT_STRING", "c_2nd_value": "DT_INT64"}


def test_csv_rows_leave_out_the_configs_missing_value_markers(tmp_path):
    path = tmp_path / "rows.csv"
    path.write_text("\ufeff île , trip miles-x,2nd value\n1.5,?,NA\n ? ,a,3\n", encoding="utf-8")
    rows = read_rows(str(path), ["", "NA", "?"])
    assert rows == [{"île": "1.5"}, {"trip miles-x": "a", "2nd value": "3"}]
    # Without the markers, 'NA' would be sent as a value (and fail as a number).
    with pytest.raises(ClientError, match=r"row 1, column '2nd value': 'NA' is not a whole number"):
        example_protos(read_rows(str(path), [""]), TYPES)


def test_json_rows_leave_out_markers_in_text_only(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"île": "?", "2nd value": 0}\n{"ile": 2.5, "trip_miles_x": "NA"}\n')
    assert read_rows(str(path), ["?", "NA"]) == [{"2nd value": 0}, {"ile": 2.5}]


def test_rows_name_columns_by_header_or_feature_key():
    by_header, by_key = example_protos(
        [{"île": "1.5", "trip miles-x": "a", "2nd value": "3"}, {"ile": 1.5, "trip_miles_x": "a", "c_2nd_value": 3}],
        TYPES,
    )
    assert by_header == by_key
    assert dict(by_header.features.feature)["c_2nd_value"].int64_list.value == [3]


def test_a_row_naming_one_column_twice_is_one_line():
    with pytest.raises(ClientError) as err:
        example_protos([{"île": 1, "ile": 2}], TYPES)
    assert str(err.value).startswith("columns 'île' and 'ile' of row 1 both become the feature key 'ile'")


def test_a_csv_row_of_another_width_is_named(tmp_path):
    path = tmp_path / "rows.csv"
    path.write_text("a,b\n1,2\n1,2,3\n")
    with pytest.raises(ClientError, match=r"rows.csv, line 3: 3 fields, but the header has 2"):
        read_rows(str(path))
