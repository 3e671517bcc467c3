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
