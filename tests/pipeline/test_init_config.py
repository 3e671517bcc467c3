"""`tfxp init`: the config inferred from a CSV file (pipeline/init_config.py) and the command's
bad input (one line, exit 2, nothing written)."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys

import pytest
import yaml

from pipeline import preflight
from pipeline.config import ConfigError, load_config
from pipeline.init_config import infer_config
from tests.pipeline.zoo_data import ZOO


def _csv(path, text):
    path.write_text(text)
    return str(path)


def _rows(n, make):
    return "".join(make(i) for i in range(n))


def _init(path, label, output=None) -> dict:
    return yaml.safe_load(infer_config(str(path), label, output))


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    directory = tmp_path_factory.mktemp("zoo")
    return {name: build(directory) for name, build in ZOO.items()}


@pytest.mark.parametrize("name", list(ZOO))
def test_each_zoo_data_set_gets_its_types_task_and_left_out_columns(zoo, name):
    case = zoo[name]
    output = case.path.parent / f"{name}.yaml"
    text = infer_config(str(case.path), case.label, str(output))
    config = yaml.safe_load(text)
    assert config["label"]["task"] == case.task
    for key, value in case.label_options.items():
        assert config["label"][key] == value, key
    for column, wanted in case.types.items():
        assert config["features"][column]["type"] == wanted, column
    written = set(config["features"])
    assert not written & case.left_out
    for column in case.left_out:
        assert f"#   {column}: " in text, column  # each with its reason
    header = preflight.csv_header(str(case.path))
    listed = text.split("# Columns left out:\n")[1].split("\n\n")[0].splitlines()
    reasons = {line.split(":")[0].removeprefix("#   ") for line in listed}
    assert written | reasons == set(header)  # every column: a feature, or left out with a reason
    if case.markers:
        assert set(config["data"]["missing_values"]) >= case.markers
    # Written next to the data: data.path relative to the config; the preflight passes as is.
    assert config["data"]["path"] == case.path.name
    output.write_text(text)
    assert preflight.check_data(load_config(str(output))) == [str(case.path)]


def test_timestamps_iso_and_epoch_and_categories_by_cardinality(tmp_path):
    path = _csv(
        tmp_path / "events.csv",
        "id,created_at,day,kind,city,amount,flag,label\n"
        + _rows(
            120,
            lambda i: (
                f"e{i},{1_600_000_000 + 3_600 * i},2021-01-{i % 28 + 1:02d}T10:00:00Z,"
                f"{'abc'[i % 3]},city{i % 110},{i * 1.5},{i % 2},{i % 2}\n"
            ),
        ),
    )
    config = _init(path, "label")
    features = config["features"]
    assert features["created_at"] == {"type": "timestamp", "format": "epoch"}
    assert features["day"] == {"type": "timestamp", "format": "iso"}
    assert features["kind"] == {"type": "categorical"}
    assert features["city"]["top_k"] == 100  # 110 distinct texts
    # Above top_k the approximate analyzer's cut is not reproducible: init asks for the exact one.
    assert features["city"]["vocabulary"] == "exact"
    assert features["amount"] == {"type": "numeric"}
    assert features["flag"] == {"type": "categorical"}
    assert "id" not in features  # text, unique per row
    assert config["label"] == {"column": "label", "task": "binary"}  # 0/1: no positive_values


def test_a_yes_no_label_names_yes_positive_and_missing_labels_are_dropped(tmp_path):
    path = _csv(
        tmp_path / "churn.csv",
        "tenure,churned\n" + _rows(90, lambda i: f"{i * 7},{'yes' if i % 3 == 0 else 'no' if i % 10 else ''}\n"),
    )
    assert _init(path, "churned")["label"] == {
        "column": "churned",
        "task": "binary",
        "positive_values": ["yes"],
        "missing": "drop",
    }


def test_a_question_mark_in_numbers_is_a_marker_and_none_in_text_a_value(tmp_path):
    path = _csv(
        tmp_path / "d.csv",
        "plan,size,y\n"
        + _rows(80, lambda i: f"{['none', 'basic', 'pro'][i % 3]},{'?' if i % 9 == 0 else i},{i % 2}\n"),
    )
    config = _init(path, "y")
    assert config["data"]["missing_values"] == ["", "NA", "N/A", "NaN", "null", "?"]
    assert config["features"]["size"]["type"] == "numeric"
    assert config["features"]["plan"] == {"type": "categorical"}  # none, basic, pro: three values


def test_a_feature_named_label_moves_the_label_name(tmp_path):
    path = _csv(tmp_path / "d.csv", "label,y\n" + _rows(80, lambda i: f"{i % 7},{i * 0.5}\n"))
    config = _init(path, "y")
    assert config["label"]["task"] == "regression"
    assert config["label"]["name"] == "y_label"  # infer_config's own parse would refuse a clash


def test_columns_tensorflow_cannot_name_are_features_under_their_header(tmp_path):
    path = _csv(
        tmp_path / "d.csv",
        "île,trip miles-x,2nd value,a.b,2nd class\n"
        + _rows(90, lambda i: f"{i * 0.5},{'pq'[i % 2]},{i % 4},{(i * 7) % 13 * 0.3},{['b', 'C', 'a'][i % 3]}\n"),
    )
    output = tmp_path / "c.yaml"
    text = infer_config(path, "2nd class", str(output))
    config = yaml.safe_load(text)
    assert list(config["features"]) == ["île", "trip miles-x", "2nd value", "a.b"]  # the user's names
    assert "# feature key c_2nd_value;" in text
    # Classes in sorted (code point) order, which the comment says, whatever their counts.
    assert config["label"] == {"column": "2nd class", "task": "multiclass", "classes": ["C", "a", "b"]}
    assert "3 classes, sorted by Unicode code point" in text
    output.write_text(text)
    loaded = load_config(str(output))
    assert list(loaded.features) == ["ile", "trip_miles_x", "c_2nd_value", "a_b"]
    assert loaded.label.column == "c_2nd_class"
    assert preflight.check_data(loaded) == [path]
    # --label by the column's feature key names the same column.
    assert _init(path, "c_2nd_class")["label"]["column"] == "2nd class"


def test_gzip_and_a_byte_order_mark_are_read(tmp_path):
    path = tmp_path / "d.csv.gz"
    with gzip.open(path, "wt", encoding="utf-8-sig") as f:
        f.write("x,y\n" + _rows(80, lambda i: f"{i * 0.1},{'ab'[i % 2]}\n"))
    config = _init(path, "y")
    assert list(config["features"]) == ["x"]
    assert config["pipeline_name"] == "d"


def test_data_path_is_absolute_when_the_config_is_elsewhere(tmp_path):
    path = _csv(tmp_path / "d.csv", "x,y\n" + _rows(80, lambda i: f"{i * 0.1},{i % 2}\n"))
    assert _init(path, "y")["data"]["path"] == path
    assert _init(path, "y", str(tmp_path / "sub" / "c.yaml"))["data"]["path"] == path
    assert _init(path, "y", str(tmp_path / "c.yaml"))["data"]["path"] == "d.csv"


def test_a_glob_of_files(tmp_path):
    (tmp_path / "exports").mkdir()
    for part in (1, 2):
        _csv(tmp_path / "exports" / f"part-{part}.csv", "x,y\n" + _rows(40, lambda i, p=part: f"{i * p},{i % 2}\n"))
    config = _init(tmp_path / "exports" / "*.csv", "y", str(tmp_path / "c.yaml"))
    assert config["data"]["path"] == "exports/*.csv"
    assert config["pipeline_name"] == "exports"


@pytest.mark.parametrize(
    "text, label, wanted",
    [
        ("x,y\n" + "1,0\n1,1\n" * 24, "y", "has 48 rows with a label; the default 8:1:1"),
        ("trip miles,trip-miles,y\n" + "1,2,0\n1,2,1\n" * 30, "y", "both become the feature key 'trip_miles'"),
        ("tips,fare\n1,2\n", "tip", "label column 'tip' is not in"),
        ("tips,fare\n1,2\n", "tip", "did you mean 'tips'?"),
        ("tips,fare\n1,2\n", "zzz", "the columns are: tips, fare"),
        ("x,y\n" + "1,a\n" * 60, "y", "label column 'y' of"),
        ("x,y\n" + "1,a\n" * 60, "y", "is 'a' in every row"),
        ("x,y\n" + "".join(f"1,v{i}\n" for i in range(60)), "y", "60 distinct text values, too many classes"),
        ("x;y\n1;2\n", "y", "separates its columns with semicolons"),
        ("x,y\n" + "1,2\n" * 60 + "1,2,3\n", "y", "line 62: 3 fields"),
    ],
)
def test_bad_input_is_one_line(tmp_path, text, label, wanted):
    path = _csv(tmp_path / "d.csv", text)
    with pytest.raises(ConfigError) as err:
        infer_config(path, label)
    assert wanted in str(err.value) and "\n" not in str(err.value)


def _tfxp(cwd, *args):
    return subprocess.run(
        [sys.executable, "-m", "tfxp", "init", *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    "make, label",
    [
        (lambda d: None, "y"),  # no such file
        (lambda d: (d / "d.csv").write_text("x,y\n" + "1,a\n" * 60), "y"),  # one label value
        (lambda d: (d / "d.csv").write_text("x,y\n" + "1,a\n" * 60), "z"),  # no such column
        (lambda d: (d / "d.csv").write_bytes(b"x,y\n\xff\xfe,1\n"), "y"),  # not UTF-8
    ],
    ids=["missing file", "one value", "no such column", "not utf-8"],
)
def test_the_command_exits_2_with_one_line_and_writes_nothing(tmp_path, make, label):
    make(tmp_path)
    done = _tfxp(tmp_path, "d.csv", "--label", label, "--output", "c.yaml")
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, done.stderr
    assert done.stdout == ""
    assert sorted(os.listdir(tmp_path)) == (["d.csv"] if (tmp_path / "d.csv").exists() else [])


def test_an_unreadable_file(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("x,y\n1,2\n")
    path.chmod(0)
    if os.access(path, os.R_OK):
        pytest.skip("running as root: every file is readable")
    done = _tfxp(tmp_path, "d.csv", "--label", "y")
    assert done.returncode == 2 and "cannot be read (permission denied)" in done.stderr


def test_the_command_prints_the_config_and_loads_no_tensorflow(tmp_path):
    _csv(tmp_path / "d.csv", "x,y\n" + _rows(80, lambda i: f"{i * 0.1},{i % 2}\n"))
    script = (
        "import sys\nfrom tfxp.main import main\ncode = main(sys.argv[1:])\n"
        "print('tensorflow' in sys.modules, code, file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, "init", "d.csv", "--label", "y"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.stderr == "False 0\n", done.stderr
    assert yaml.safe_load(done.stdout)["data"]["path"] == str(tmp_path / "d.csv")


def test_skewness_is_the_sample_skewness_of_the_numbers():
    import numpy as np

    from pipeline.init_config import ColumnStats

    values = [1, 2, 2, 3, 3, 3, 50, 0.5, 7, 7]
    column = ColumnStats("x")
    for v in values:
        column.add(str(v))
    x = np.array(values, dtype=float)
    expected = np.mean((x - x.mean()) ** 3) / np.mean((x - x.mean()) ** 2) ** 1.5
    assert column.skewness == pytest.approx(expected, rel=1e-9)


def test_heavy_tailed_non_negative_numbers_are_read_as_logs(tmp_path):
    # price: a long right tail (a few rows 100x the rest); score: symmetric; delta: the same tail
    # below 0, where log(1 + x) is not defined.
    def row(i):
        tail = 1000 if i % 50 == 0 else 10 + i % 7
        return f"{tail}.5,{i % 11}.25,{-tail}.5,{i % 2}\n"

    config = _init(_csv(tmp_path / "t.csv", "price,score,delta,y\n" + _rows(400, row)), "y")
    assert config["features"]["price"] == {"type": "numeric", "log_transform": True}
    assert config["features"]["score"] == {"type": "numeric"}
    assert config["features"]["delta"] == {"type": "numeric"}
    text = infer_config(str(tmp_path / "t.csv"), "y")
    assert "the model reads log(1 + x)" in next(line for line in text.splitlines() if line.startswith("  price:"))


def test_a_heavy_tailed_regression_label_is_learned_as_a_log(tmp_path):
    def row(i):
        return f"{1000 if i % 40 == 0 else 5 + i % 9}.25,{i % 13}.5\n"

    config = _init(_csv(tmp_path / "t.csv", "price,size\n" + _rows(400, row)), "price")
    assert config["label"] == {"column": "price", "task": "regression", "log_transform": True}
    config = _init(
        _csv(tmp_path / "u.csv", "price,size\n" + _rows(400, lambda i: f"{5 + i % 9}.25,{i % 13}.5\n")), "price"
    )
    assert "log_transform" not in config["label"]
