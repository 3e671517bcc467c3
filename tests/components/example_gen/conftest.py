"""Shared set-up of the ExampleGen tests: the tiny taxi sample as a directory of two CSV files."""

import pytest

from tests.conftest import TINY_CSV


@pytest.fixture
def csv_in_two_files(tmp_path):
    """Makes tmp_path/data with the tiny sample's lines before `split_at` in a.csv and the rest,
    under the same header, in b.csv; returns the directory and the sample's lines."""

    def make(split_at: int):
        data = tmp_path / "data"
        data.mkdir()
        lines = TINY_CSV.read_text().splitlines(keepends=True)
        (data / "a.csv").write_text("".join(lines[:split_at]))
        (data / "b.csv").write_text(lines[0] + "".join(lines[split_at:]))
        return data, lines

    return make
