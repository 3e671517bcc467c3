"""Data checks that run before any TFX component: one clear error for each bad input."""

import pytest
import yaml

from pipeline.config import DEFAULT_CONFIG, ConfigError, load_config, parse_config, resolve_path
from pipeline.preflight import check_data, column_headers
from tests.conftest import TINY_CSV
from tests.pipeline.csv_rows import sample_rows, with_change, write_rows


def _config(path, *overrides):
    return load_config(None, [f"data.path={path}", *overrides])


def test_the_bundled_sample_passes(taxi_config):
    assert check_data(taxi_config)[0].endswith("data.csv")


def test_a_single_file_passes():
    assert check_data(_config(TINY_CSV)) == [str(TINY_CSV)]


@pytest.mark.parametrize(
    "content, message",
    [
        ("", "is empty"),
        ("a,b,c\n", "has a header but no rows"),
        ("\n1,2\n", "has no header line"),
    ],
)
def test_broken_files(tmp_path, content, message):
    path = tmp_path / "data.csv"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        check_data(_config(path))


def test_missing_path(tmp_path):
    with pytest.raises(ConfigError, match="does not exist; set data.path"):
        check_data(_config(tmp_path / "missing"))


def test_directory_without_csv_files(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ConfigError, match=r"holds no \*.csv or \*.csv.gz files"):
        check_data(_config(tmp_path))


def test_label_column_missing(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text(TINY_CSV.read_text().replace("tips", "tip_amount"))
    with pytest.raises(ConfigError, match="label column 'tips' is not in .*set label.column"):
        check_data(_config(path))


def test_feature_named_in_config_but_not_in_data():
    with pytest.raises(ConfigError, match="feature column\\(s\\) 'fare_amount' named in the config"):
        check_data(_config(TINY_CSV, "features.fare_amount.type=numeric"))


def test_files_with_different_headers(tmp_path):
    (tmp_path / "a.csv").write_text(TINY_CSV.read_text())
    (tmp_path / "b.csv").write_text("x,y\n1,2\n")
    with pytest.raises(ConfigError, match="have different headers"):
        check_data(_config(tmp_path))


def test_not_utf8(tmp_path):
    path = tmp_path / "data.csv"
    path.write_bytes(TINY_CSV.read_text().replace("Credit Card", "Cr\u00e9dit").encode("utf-16"))
    with pytest.raises(ConfigError, match="is not UTF-8"):
        check_data(_config(path))


def test_curated_schema_must_exist(tmp_path):
    with pytest.raises(ConfigError, match="schema file .* does not exist"):
        check_data(_config(TINY_CSV, f"schema.path={tmp_path / 'schema.pbtxt'}"))


def _tiny_lines():
    return TINY_CSV.read_text().splitlines(keepends=True)


def test_a_truncated_file_names_the_line(tmp_path):
    lines = _tiny_lines()
    path = tmp_path / "data.csv"
    path.write_text("".join(lines[:10]) + lines[10][:25])
    with pytest.raises(ConfigError, match=r"data.csv, line 11: \d+ fields, but the header has 18 \(a truncated file"):
        check_data(_config(path))


def test_another_delimiter_is_named(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("".join(line.replace(",", ";") for line in _tiny_lines()))
    with pytest.raises(ConfigError, match="separates its columns with semicolons, not commas"):
        check_data(_config(path))


def test_another_encoding_further_down_the_file(tmp_path):
    lines = _tiny_lines()
    path = tmp_path / "data.csv"
    # Past the first 8 KiB block, which the header check decodes, so the row scan finds it.
    good = "".join(lines + lines[1:])
    path.write_bytes(good.encode() + "".join(lines[70:]).replace("Cash", "Esp\u00e8ces").encode("latin-1"))
    with pytest.raises(ConfigError, match=r"is not UTF-8 text \(after line \d+: invalid .*iconv -f LATIN1 -t UTF-8"):
        check_data(_config(path))


# --------------------------------------------------------------------------- values


def test_missing_value_markers_are_not_text(tmp_path):
    path = write_rows(tmp_path, with_change("trip_miles", lambda n, v: "NA" if n % 3 == 0 else v))
    assert check_data(_config(path))
    with pytest.raises(
        ConfigError,
        match=r"data.csv, line 4, column 'trip_miles': 'NA' is not a number, "
        r"but 'trip_miles' is read as one; .*data.missing_values",
    ):
        check_data(_config(path, "data.missing_values=['']"))


@pytest.mark.parametrize(
    "column, overrides, fix",
    [
        ("trip_miles", [], "or make the feature categorical"),
        ("tips", [], "fix the value or add it to data.missing_values"),  # the taxi rule compares numbers
        ("tips", ["label.greater_than_fraction_of=null"], "or set label.positive_values"),  # a 0/1 label
    ],
)
def test_text_in_a_numeric_column_names_file_line_column_and_value(tmp_path, column, overrides, fix):
    path = write_rows(tmp_path, with_change(column, lambda n, v: "twelve" if n == 7 else v))
    with pytest.raises(ConfigError, match=rf"data.csv, line 8, column '{column}': 'twelve' is not a number.* {fix}"):
        check_data(_config(path, *overrides))


@pytest.mark.parametrize(
    "value, problem", [("1e400", "is not finite"), ("-inf", "is not finite"), ("1e39", "overflows a 32-bit float")]
)
def test_infinities_and_overflow(tmp_path, value, problem):
    path = write_rows(tmp_path, with_change("trip_miles", lambda n, v: value if n == 3 else v))
    with pytest.raises(ConfigError, match=rf"line 4, column 'trip_miles': '{value}' {problem}"):
        check_data(_config(path))


def test_a_label_missing_in_some_rows_stops_the_run_with_the_count(tmp_path):
    path = write_rows(tmp_path, with_change("tips", lambda n, v: "" if n % 10 == 5 else v))
    with pytest.raises(
        ConfigError,
        match=r"the label \(from 'tips' and 'fare'\) is missing in 8 of 80 rows "
        r"\(first: .*data.csv, line 6, column 'tips'\); .*label.missing: drop",
    ):
        check_data(_config(path))
    assert check_data(_config(path, "label.missing=drop"))


def test_a_label_missing_everywhere_is_refused_even_with_drop(tmp_path):
    path = write_rows(tmp_path, with_change("tips", lambda n, v: "NA"))
    with pytest.raises(ConfigError, match="no row of .*data.csv has a label"):
        check_data(_config(path, "label.missing=drop"))


def test_dropped_rows_count_against_the_rows_the_splits_need(tmp_path):
    path = write_rows(tmp_path, with_change("tips", lambda n, v: "" if n > 40 else v))
    with pytest.raises(ConfigError, match=r"has 40 rows \(40 without a label dropped\); the 8:1:1 .* at least 50"):
        check_data(_config(path, "label.missing=drop"))


def test_a_feature_missing_in_every_row(tmp_path):
    path = write_rows(tmp_path, with_change("trip_miles", lambda n, v: "" if n % 2 else "N/A"))
    with pytest.raises(ConfigError, match=r"feature 'trip_miles' has no value in any of the 80 rows"):
        check_data(_config(path))


@pytest.mark.parametrize(
    "overrides, rule",
    [
        ([], r"label 'big_tipper' is 0 in all 80 rows .*\(tips > 0.2 \* fare\)"),
        (
            ["label.greater_than_fraction_of=null", "label.positive_values=['yes']"],
            r"is 0 in all 80 rows .*tips in \['yes'\]",
        ),
    ],
)
def test_a_constant_label(tmp_path, overrides, rule):
    path = write_rows(tmp_path, with_change("tips", lambda n, v: "0"))
    with pytest.raises(ConfigError, match=rule):
        check_data(_config(path, *overrides))


def _with_task(config, task, **label):
    """`config` with label.task `task` (and the label read from its column as it is)."""
    from pipeline.config import Task

    return config.model_copy(
        update={
            "label": config.label.model_copy(update={"task": Task(task), "greater_than_fraction_of": None, **label})
        }
    )


def test_the_label_checks_follow_the_task(tmp_path):
    words = write_rows(tmp_path, with_change("tips", lambda n, v: "high" if n % 2 else "low"), name="words.csv")
    assert check_data(_with_task(_config(words), "multiclass"))  # classes may be words
    with pytest.raises(ConfigError, match="line 2, column 'tips': 'high' is not a number"):
        check_data(_with_task(_config(words), "regression"))
    constant = write_rows(tmp_path, with_change("tips", lambda n, v: "2.5"), name="constant.csv")
    with pytest.raises(ConfigError, match=r"label column 'tips' is 2.5 in all 80 rows .*cannot learn from one value"):
        check_data(_with_task(_config(constant), "regression"))
    assert check_data(_with_task(_config(TINY_CSV), "regression"))


def test_fewer_rows_than_the_splits_need(tmp_path):
    path = write_rows(tmp_path, sample_rows()[:9])
    with pytest.raises(
        ConfigError,
        match=r"has 8 rows; the 8:1:1 train:eval:test split needs at least 50 "
        r"so that the eval split expects 5",
    ):
        check_data(_config(path))
    # Bigger shares for eval and test make the same rows too few by a different count.
    with pytest.raises(ConfigError, match="the 2:1:1 train:eval:test split needs at least 20"):
        check_data(_config(path, "data.train_buckets=2"))


def test_duplicate_column_names(tmp_path):
    rows = sample_rows()
    rows[0][rows[0].index("trip_start_timestamp")] = "fare"
    with pytest.raises(ConfigError, match=r"has two columns named 'fare' \(columns 2 and 6 of the header\); rename"):
        check_data(_config(write_rows(tmp_path, rows)))


def test_a_byte_order_mark_is_read_silently(tmp_path):
    path = write_rows(tmp_path, sample_rows(), encoding="utf-8-sig")
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    assert check_data(_config(path)) == [str(path)]


def test_a_gzip_file_is_read(tmp_path):
    import gzip

    path = tmp_path / "data.csv.gz"
    path.write_bytes(gzip.compress(TINY_CSV.read_bytes()))
    assert check_data(_config(path)) == [str(path)]
    broken = write_rows(tmp_path, with_change("fare", lambda n, v: "x" if n == 70 else v))
    (tmp_path / "broken.csv.gz").write_bytes(gzip.compress(broken.read_bytes()))
    with pytest.raises(ConfigError, match=r"broken.csv.gz, line 71, column 'fare': 'x' is not a number"):
        check_data(_config(tmp_path / "broken.csv.gz"))


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("data.csv", "gzip", r"is gzip-compressed but its name does not end in .gz .* rename it to data.csv.gz"),
        ("data.csv.gz", "plain", r"is named .gz but is not gzip-compressed"),
        ("data.csv", "zip", r"is a zip archive, not CSV text"),
    ],
)
def test_compression_that_does_not_match_the_name_is_refused(tmp_path, name, content, message):
    import gzip
    import zipfile

    path = tmp_path / name
    if content == "zip":
        with zipfile.ZipFile(path, "w") as z:
            z.write(TINY_CSV, "data.csv")
    else:
        path.write_bytes(gzip.compress(TINY_CSV.read_bytes()) if content == "gzip" else TINY_CSV.read_bytes())
    with pytest.raises(ConfigError, match=message):
        check_data(_config(path))


def test_a_directory_of_gzip_files_is_read(tmp_path):
    import gzip

    from pipeline.config import DataFormat
    from pipeline.data_files import directory_pattern

    (tmp_path / "a.csv.gz").write_bytes(gzip.compress(TINY_CSV.read_bytes()))
    assert check_data(_config(tmp_path)) == [str(tmp_path / "a.csv.gz")]
    assert directory_pattern(DataFormat.CSV, str(tmp_path)) == "*.csv.gz"
    # Plain and gzipped files together: one pattern for both, each file read and checked.
    lines = _tiny_lines()
    (tmp_path / "b.csv").write_text(lines[0] + "".join(lines[1:40]).replace("Cash", "Cash,"))
    with pytest.raises(ConfigError, match=r"b.csv, line \d+: 19 fields"):
        check_data(_config(tmp_path))
    (tmp_path / "b.csv").write_text("".join(lines))
    assert check_data(_config(tmp_path)) == [str(tmp_path / "a.csv.gz"), str(tmp_path / "b.csv")]
    assert directory_pattern(DataFormat.CSV, str(tmp_path)) == "*.csv*"
    (tmp_path / "b.csv.bak").write_text("old")
    with pytest.raises(
        ConfigError,
        match=r"holds .csv and .csv.gz files, so ExampleGen reads every \*.csv\* "
        r"file there, and .*b.csv.bak is neither; move it out",
    ):
        check_data(_config(tmp_path))


def test_a_directory_of_plain_csv_keeps_its_pattern(tmp_path):
    from pipeline.config import DataFormat
    from pipeline.data_files import directory_pattern

    (tmp_path / "a.csv").write_text(TINY_CSV.read_text())
    (tmp_path / "a.csv.bak").write_text("old")  # not read: the pattern is *.csv
    assert check_data(_config(tmp_path)) == [str(tmp_path / "a.csv")]
    assert directory_pattern(DataFormat.CSV, str(tmp_path)) == "*.csv"
    assert directory_pattern(DataFormat.PARQUET, str(tmp_path)) == "*.parquet"


def test_missing_value_markers_are_refused_for_tfrecord(tmp_path):
    (tmp_path / "data.tfrecord").write_bytes(b"x")
    assert check_data(_config(tmp_path, "data.format=tfrecord"))  # the default markers: nothing to refuse
    with pytest.raises(
        ConfigError,
        match=r"data.missing_values does not apply to data.format tfrecord .*"
        r"remove data.missing_values",
    ):
        check_data(_config(tmp_path, "data.format=tfrecord", "data.missing_values=['-']"))


def _multiclass(path, classes=("Cash", "Credit Card"), **label):
    """The bundled config with payment_type as a multiclass label of `classes`."""
    raw = yaml.safe_load(open(resolve_path(DEFAULT_CONFIG)))
    del raw["features"]["payment_type"]
    raw["label"] = {
        "column": "payment_type",
        "name": "payment_class",
        "task": "multiclass",
        "classes": list(classes),
        **label,
    }
    return parse_config({**raw, "data": {"path": str(path)}})


def test_a_label_outside_label_classes_stops_the_run_with_its_line(tmp_path):
    path = write_rows(tmp_path, with_change("payment_type", lambda n, v: "Credit Card" if v != "Cash" else v))
    assert check_data(_multiclass(path))
    path = write_rows(
        tmp_path, with_change("payment_type", lambda n, v: "Pcard" if n == 12 else v if v == "Cash" else "Credit Card")
    )
    with pytest.raises(
        ConfigError,
        match=r"data.csv, line 13, column 'payment_type': the label 'Pcard' is not one "
        r"of label.classes \(Cash, Credit Card\); add it to label.classes or "
        r"remove the row \(label.other_classes: drop",
    ):
        check_data(_multiclass(path))
    assert check_data(_multiclass(path, other_classes="drop"))
    # Without a list of classes every value is a class.
    assert check_data(_multiclass(path, classes=()))


def test_rows_of_other_classes_dropped_count_against_the_rows_the_splits_need(tmp_path):
    path = write_rows(
        tmp_path,
        with_change("payment_type", lambda n, v: "Cash" if n <= 20 else "Credit Card" if n <= 40 else "Dispute"),
    )
    with pytest.raises(ConfigError, match=r"has 40 rows \(40 of other classes dropped\); the 8:1:1"):
        check_data(_multiclass(path, other_classes="drop"))


def test_column_names_tensorflow_cannot_take_are_mapped_to_feature_keys(tmp_path):
    rows = sample_rows()
    rows[0][rows[0].index("trip_miles")] = "trip miles-x"
    rows[0][rows[0].index("fare")] = "île"
    path = write_rows(tmp_path, rows)
    raw = yaml.safe_load(open(resolve_path(DEFAULT_CONFIG)))
    raw["features"]["trip miles-x"] = raw["features"].pop("trip_miles")  # by its header
    raw["features"]["ile"] = raw["features"].pop("fare")  # by its feature key
    raw["label"]["greater_than_fraction_of"] = "île"  # by its header
    config = parse_config({**raw, "data": {"path": str(path)}})
    assert {"trip_miles_x", "ile"} <= set(config.features)
    assert config.label.greater_than_fraction_of == "ile"
    assert check_data(config) == [str(path)]
    assert column_headers(config) == {"trip_miles_x": "trip miles-x", "ile": "île"}
    # A bad value is named by the column's header, as the user knows it.
    rows[1][rows[0].index("île")] = "cheap"
    write_rows(tmp_path, rows)
    with pytest.raises(ConfigError, match=r"line 2, column 'île': 'cheap' is not a number"):
        check_data(config)


def test_two_columns_that_become_one_feature_key_are_one_line(tmp_path):
    rows = sample_rows()
    rows[0][rows[0].index("pickup_census_tract")] = "census tract"
    rows[0][rows[0].index("dropoff_census_tract")] = "census-tract"
    path = write_rows(tmp_path, rows)
    with pytest.raises(ConfigError) as err:
        check_data(_config(path))
    assert str(err.value) == (
        f"columns 'census tract' and 'census-tract' of {path} both become the feature key 'census_tract' "
        "(names are mapped to ASCII letters, digits and '_'); rename one of them"
    )


def test_the_scan_keeps_counts_not_rows(tmp_path):
    # Bounded memory: ten times the rows, about the same peak of Python allocations.
    import tracemalloc

    from pipeline import preflight

    rows = sample_rows()
    peaks = []
    for copies in (20, 200):
        path = write_rows(tmp_path, [rows[0], *rows[1:] * copies], name=f"x{copies}.csv")
        config = _config(path)
        tracemalloc.start()
        summary = preflight.scan(config, str(path), rows[0], preflight.DataSummary())
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert summary.rows == summary.rows_kept == 80 * copies and len(summary.label_classes) == 2
    assert peaks[1] < 2 * peaks[0], peaks


# --------------------------------------------------------------------------- output directory


@pytest.mark.parametrize("target", ["/proc/x", "file/sub"])
def test_an_output_directory_that_cannot_be_created(tmp_path, target):
    from pipeline.preflight import check_output

    (tmp_path / "file").write_text("not a directory")
    output = target if target.startswith("/") else str(tmp_path / target)
    with pytest.raises(ConfigError, match=rf"output directory {output} cannot be written: .*; set output_dir"):
        check_output(_config(TINY_CSV, f"output_dir={output}"))


def test_inference_data_is_checked_before_the_run(tmp_path):
    assert check_data(_config(TINY_CSV, f"inference.data_path={TINY_CSV}")) == [str(TINY_CSV)]
    with pytest.raises(ConfigError, match=rf"^data path {tmp_path}/new does not exist; set inference\.data_path"):
        check_data(_config(TINY_CSV, f"inference.data_path={tmp_path / 'new'}"))
    rows = TINY_CSV.read_text().splitlines()
    header = rows[0].split(",")
    drop = header.index("company")
    (tmp_path / "new.csv").write_text(
        "".join(",".join(r.split(",")[:drop] + r.split(",")[drop + 1 :]) + "\n" for r in rows[:3])
    )
    with pytest.raises(
        ConfigError, match=r"^inference\.data_path: feature column\(s\) 'company' of the model are not in"
    ):
        check_data(_config(TINY_CSV, f"inference.data_path={tmp_path / 'new.csv'}"))
