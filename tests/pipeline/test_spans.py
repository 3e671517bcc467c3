"""Spans on disk: which exist, which a run reads, adding a drop."""

import pytest

from pipeline.config import ConfigError, load_config
from pipeline.spans import add_span, current_files, span_files


def _config(tmp_path, *overrides):
    return load_config(None, [f"data.path={tmp_path / 'data'}", "data.span_pattern=span-{SPAN}/*.csv", *overrides])


def _drop(path, text="a,b\n1,2\n"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_spans_are_found_by_number_not_by_name(tmp_path):
    for span in (2, 10, 9):
        _drop(tmp_path / "data" / f"span-{span}" / "part.csv")
    _drop(tmp_path / "data" / "span-x" / "part.csv")
    _drop(tmp_path / "data" / "span-11" / "notes.txt")
    config = _config(tmp_path)
    assert list(span_files(config)) == [2, 9, 10]
    assert current_files(config) == [str(tmp_path / "data" / "span-10" / "part.csv")]
    assert current_files(_config(tmp_path, "data.rolling_spans=2")) == [
        str(tmp_path / "data" / "span-9" / "part.csv"),
        str(tmp_path / "data" / "span-10" / "part.csv"),
    ]


def test_add_span_copies_the_drop_in_as_the_next_span(tmp_path):
    config = _config(tmp_path)
    (tmp_path / "data").mkdir()
    assert add_span(config, str(_drop(tmp_path / "in" / "monday.csv"))) == (
        1,
        str(tmp_path / "data" / "span-1" / "monday.csv"),
    )
    span, path = add_span(config, str(_drop(tmp_path / "in" / "tuesday.csv", "a,b\n3,4\n")))
    assert span == 2 and open(path).read() == "a,b\n3,4\n"
    assert not list((tmp_path / "data").rglob("*.partial"))


def test_add_span_refuses_what_the_pattern_would_not_read(tmp_path):
    config = _config(tmp_path)
    with pytest.raises(ConfigError, match="does not match"):
        add_span(config, str(_drop(tmp_path / "in" / "drop.txt")))
    with pytest.raises(ConfigError, match="is not a file"):
        add_span(config, str(tmp_path / "missing.csv"))
    with pytest.raises(ConfigError, match="holds no span matching"):
        current_files(config)
