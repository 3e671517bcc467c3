"""The tiny sample's rows changed and written back as CSV: the data the preflight tests feed it."""

from __future__ import annotations

import csv
import io

from tests.conftest import TINY_CSV


def sample_rows() -> list[list[str]]:
    """The tiny sample's header and rows, as lists of text."""
    with open(TINY_CSV, newline="") as f:
        return list(csv.reader(f))


def write_rows(directory, rows, name="data.csv", encoding="utf-8"):
    """`rows` as a CSV file `name` in `directory`; returns its path."""
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows(rows)
    path = directory / name
    path.write_bytes(text.getvalue().encode(encoding))
    return path


def with_change(column, change, rows=None):
    """The tiny sample (or `rows`) with `change(row_number, value)` applied to one column."""
    rows = rows or sample_rows()
    i = rows[0].index(column)
    for n, row in enumerate(rows[1:], 1):
        row[i] = change(n, row[i])
    return rows
