"""Data checks that run before any TFX component: one clear error for each bad input."""

import pytest

from pipeline.config import ConfigError, load_config
from pipeline.preflight import check_data
from tests.conftest import TINY_CSV


def _config(path, *overrides):
    return load_config(None, [f"data.path={path}", *overrides])


def test_the_bundled_sample_passes(taxi_config):
    assert check_data(taxi_config)[0].endswith("data.csv")


def test_a_single_file_passes():
    assert check_data(_config(TINY_CSV)) == [str(TINY_CSV)]


@pytest.mark.parametrize("content, message", [
    ("", "is empty"),
    ("a,b,c\n", "has a header but no rows"),
    ("\n1,2\n", "has no header line"),
])
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
    with pytest.raises(ConfigError, match=r"holds no \*.csv files"):
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
