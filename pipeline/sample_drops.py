"""Sample drops for trying the span loop: the bundled taxi sample cut into numbered CSV files.

`python -m pipeline.sample_drops OUT_DIR` writes drop-1.csv, drop-2.csv (similar data) and
drop-3.csv (every fare 2.5 times higher: a drifted drop), each a random share of the sample.
"""

from __future__ import annotations

import argparse
import csv
import os
import random

from pipeline.config import load_config

FARE_SCALE = 2.5


def write_drops(out_dir: str, rows_per_drop: int = 2500, seed: int = 7) -> list[str]:
    """Writes three drops of `rows_per_drop` rows; the third drifted. Returns their paths."""
    with open(os.path.join(load_config(None).data.path, "data.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    if 3 * rows_per_drop > len(rows):
        raise ValueError(f"the sample has {len(rows)} rows; ask for at most {len(rows) // 3} per drop")
    random.Random(seed).shuffle(rows)
    os.makedirs(out_dir, exist_ok=True)
    paths = []
    for number in (1, 2, 3):
        part = [dict(r) for r in rows[(number - 1) * rows_per_drop : number * rows_per_drop]]
        if number == 3:
            for row in part:
                if row["fare"]:
                    row["fare"] = f"{float(row['fare']) * FARE_SCALE:.2f}"
        path = os.path.join(out_dir, f"drop-{number}.csv")
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(part)
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out_dir")
    parser.add_argument("--rows", type=int, default=2500, help="rows per drop (default 2500)")
    args = parser.parse_args()
    for path in write_drops(args.out_dir, args.rows):
        print(path)


if __name__ == "__main__":
    main()
