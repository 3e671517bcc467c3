"""The benchmark data generator: size, columns, valid values, label kept, determinism."""

from __future__ import annotations

import csv
import math

import pytest

from benchmarks import datagen
from tests.conftest import TINY_CSV


def _read(paths):
    rows = []
    for path in paths:
        with open(path, newline="") as f:
            rows += list(csv.DictReader(f))
    return rows


@pytest.fixture
def small_chunks(monkeypatch):
    """Small chunks and files, so that a few hundred rows cross both boundaries."""
    monkeypatch.setattr(datagen, "CHUNK_ROWS", 40)
    monkeypatch.setattr(datagen, "ROWS_PER_FILE", 120)


def test_row_count_columns_and_files(tmp_path, small_chunks):
    paths = datagen.generate(250, str(tmp_path / "out"), seed=1, sample_path=str(TINY_CSV))
    with open(TINY_CSV, newline="") as f:
        header = next(csv.reader(f))
    assert len(paths) == 3  # 120 + 120 + 10 rows
    for path in paths:
        with open(path, newline="") as f:
            assert next(csv.reader(f)) == header
    rows = _read(paths)
    assert len(rows) == 250
    assert all(set(row) == set(header) for row in rows)


def test_values_stay_valid(tmp_path, small_chunks):
    sample = datagen.Sample(str(TINY_CSV))
    rows = _read(datagen.generate(300, str(tmp_path), seed=2, sample_path=str(TINY_CSV)))
    for row in rows:
        for column in ("fare", "tips", "trip_miles", "trip_seconds"):
            if row[column] != "":
                assert float(row[column]) >= 0, (column, row[column])
        if sample.integer["trip_seconds"] and row["trip_seconds"]:
            assert row["trip_seconds"].isdigit()
        for column in ("pickup_latitude", "dropoff_latitude"):
            if row[column]:
                assert 40 < float(row[column]) < 43
        assert row["trip_start_timestamp"].lstrip("-").isdigit()
        # categorical values come from the sample unchanged
        assert row["payment_type"] in set(sample.raw["payment_type"])
        assert row["company"] in set(sample.raw["company"])


def test_missing_values_stay_missing_and_label_is_kept(tmp_path):
    sample = datagen.Sample(str(TINY_CSV))
    missing_rate = sum(v == "" for v in sample.raw["pickup_latitude"]) / sample.size
    rows = _read(datagen.generate(2000, str(tmp_path), seed=3, sample_path=str(TINY_CSV)))
    generated_rate = sum(r["pickup_latitude"] == "" for r in rows) / len(rows)
    assert abs(generated_rate - missing_rate) < 0.05

    def big_tipper(tips, fare):
        return float(tips or 0) > 0.2 * float(fare or 0)

    base_rate = sum(big_tipper(t, f) for t, f in zip(sample.raw["tips"], sample.raw["fare"])) / sample.size
    rate = sum(big_tipper(r["tips"], r["fare"]) for r in rows) / len(rows)
    assert abs(rate - base_rate) < 0.05


def test_noise_changes_numbers(tmp_path):
    rows = _read(datagen.generate(500, str(tmp_path), seed=4, sample_path=str(TINY_CSV)))
    sample = datagen.Sample(str(TINY_CSV))
    originals = {f"{v:.2f}" for v in sample.numbers["fare"] if not math.isnan(v)}
    fares = [r["fare"] for r in rows if r["fare"] and float(r["fare"]) > 0]
    assert fares and sum(f not in originals for f in fares) > len(fares) / 2


def test_deterministic_and_seeded(tmp_path, small_chunks):
    first = _read(datagen.generate(150, str(tmp_path / "a"), seed=5, sample_path=str(TINY_CSV)))
    second = _read(datagen.generate(150, str(tmp_path / "b"), seed=5, sample_path=str(TINY_CSV)))
    other = _read(datagen.generate(150, str(tmp_path / "c"), seed=6, sample_path=str(TINY_CSV)))
    assert first == second
    assert first != other


def test_reuses_a_complete_data_set_and_replaces_another(tmp_path):
    out = str(tmp_path)
    paths = datagen.generate(100, out, seed=7, sample_path=str(TINY_CSV))
    stamp = [p.stat().st_mtime_ns for p in map(__import__("pathlib").Path, paths)]
    assert datagen.generate(100, out, seed=7, sample_path=str(TINY_CSV)) == paths
    assert [p.stat().st_mtime_ns for p in map(__import__("pathlib").Path, paths)] == stamp
    assert len(_read(datagen.generate(60, out, seed=7, sample_path=str(TINY_CSV)))) == 60
