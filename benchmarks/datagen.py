"""Makes N-row taxi data sets by resampling the bundled sample with noise.

Rows are drawn with replacement from the ~15k-row sample (which is small and held in
memory); the output is written in fixed-size chunks, so memory stays bounded however many
rows are asked for. The same seed and row count give byte-identical files.

Noise keeps every value valid for the pipeline: missing stays missing, integers stay
integers, distances, durations and money stay non-negative, and fare and tips are scaled by
the same factor, so the "big tipper" label (tips > 20% of fare) of each row is preserved.
"""

from __future__ import annotations

import csv
import os
from typing import Iterator

import numpy as np

SAMPLE = "package://tfx/examples/chicago_taxi_pipeline/data/simple/data.csv"
CHUNK_ROWS = 50_000  # rows generated and written per step: bounds memory
ROWS_PER_FILE = 500_000  # a multiple of CHUNK_ROWS; several files let readers work in parallel

# Multiplicative (log-normal) noise: sigma of log(factor).
_MONEY = ("fare", "tips")  # one shared factor keeps the label
_SCALED = {"trip_miles": 0.05, "trip_seconds": 0.05}
_COORDS = ("pickup_latitude", "pickup_longitude", "dropoff_latitude", "dropoff_longitude")
_COORD_SIGMA = 0.002  # degrees, about 200 m
_TIMESTAMP_JITTER = 3600  # seconds


def resolve(path: str) -> str:
    from pipeline.config import resolve_path

    return resolve_path(path)


class Sample:
    """The sample as columns: raw strings, and floats (NaN where empty) for noisy columns."""

    def __init__(self, path: str):
        with open(path, newline="") as f:
            reader = csv.reader(f)
            self.header = next(reader)
            rows = list(reader)
        self.raw = {name: np.array([r[i] for r in rows], dtype=object) for i, name in enumerate(self.header)}
        self.numbers = {
            name: _floats(self.raw[name])
            for name in (*_MONEY, *_SCALED, *_COORDS, "trip_start_timestamp")
            if name in self.raw
        }
        self.integer = {name: all(v == "" or v.lstrip("-").isdigit() for v in self.raw[name]) for name in self.numbers}
        self.size = len(rows)


def _floats(values: np.ndarray) -> np.ndarray:
    return np.array([float(v) if v != "" else np.nan for v in values], dtype=np.float64)


def _format(values: np.ndarray, integer: bool, decimals: int) -> np.ndarray:
    """Numbers as CSV text; NaN (missing) as the empty field."""
    if integer:
        text = np.char.mod("%d", np.nan_to_num(np.round(values), nan=0).astype(np.int64))
    else:
        text = np.char.mod(f"%.{decimals}f", np.nan_to_num(values, nan=0.0))
    return np.where(np.isnan(values), "", text).astype(object)


def chunks(sample: Sample, rows: int, seed: int) -> Iterator[list[np.ndarray]]:
    """Yields the columns of successive chunks of `rows` resampled, noisy rows."""
    rng = np.random.default_rng(seed)
    left = rows
    while left > 0:
        n = min(CHUNK_ROWS, left)
        left -= n
        index = rng.integers(0, sample.size, n)
        money = rng.lognormal(0.0, 0.05, n)
        columns = {}
        for name in sample.header:
            if name in _MONEY:
                values = sample.numbers[name][index] * money
                columns[name] = _format(values, sample.integer[name], 2)
            elif name in _SCALED:
                values = sample.numbers[name][index] * rng.lognormal(0.0, _SCALED[name], n)
                columns[name] = _format(values, sample.integer[name], 2)
            elif name in _COORDS:
                values = sample.numbers[name][index] + rng.normal(0.0, _COORD_SIGMA, n)
                columns[name] = _format(values, sample.integer[name], 6)
            elif name == "trip_start_timestamp":
                values = sample.numbers[name][index] + rng.integers(-_TIMESTAMP_JITTER, _TIMESTAMP_JITTER, n)
                columns[name] = _format(values, True, 0)
            else:
                columns[name] = sample.raw[name][index]
        yield [columns[name] for name in sample.header]


def generate(rows: int, out_dir: str, seed: int = 0, sample_path: str = SAMPLE) -> list[str]:
    """Writes `rows` rows as CSV files (with header) under `out_dir`; returns their paths.

    An existing, complete data set of the same size and seed is reused.
    """
    marker = os.path.join(out_dir, f".complete-{rows}-{seed}")
    if os.path.exists(marker):
        return sorted(os.path.join(out_dir, f) for f in os.listdir(out_dir) if f.endswith(".csv"))
    os.makedirs(out_dir, exist_ok=True)
    for name in os.listdir(out_dir):
        if name.endswith(".csv") or name.startswith(".complete-"):
            os.remove(os.path.join(out_dir, name))
    sample = Sample(resolve(sample_path))
    paths: list[str] = []
    handle = None
    try:
        for number, columns in enumerate(chunks(sample, rows, seed)):
            if number % (ROWS_PER_FILE // CHUNK_ROWS) == 0:
                if handle:
                    handle.close()
                paths.append(os.path.join(out_dir, f"part-{len(paths):05d}.csv"))
                handle = open(paths[-1], "w", newline="")
                writer = csv.writer(handle, lineterminator="\n")
                writer.writerow(sample.header)
            writer.writerows(zip(*columns))
    finally:
        if handle:
            handle.close()
    open(marker, "w").close()
    return paths
