"""A zoo of real public tabular data sets, written as CSV files the way a new user has them.

Each comes from the files scikit-learn ships in `sklearn/datasets/data` (read by its `load_*`
functions, or from the file itself; nothing is downloaded). Where a data set lacks a trait the
zoo must cover (an ISO date, epoch seconds, missing values, text categories, an ID column, a
constant or an empty column), `write` derives it with a seeded `random.Random`, as each
builder's docstring says, so the files are the same on every run. Together: binary,
multiclass (text classes and integer codes) and regression.

`ZOO[name](directory)` writes `<name>.csv` there and returns a `Case`: the file, the label
column, and what `tfxp init` should infer (tests/pipeline/test_init_config.py), which
tests/e2e/test_zoo.py then runs as a user would.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime
import importlib.resources
import pathlib
import random
from typing import Callable

SEED = 27


@dataclasses.dataclass
class Case:
    path: pathlib.Path
    label: str
    task: str
    types: dict  # column -> the feature type init should choose (a few telling ones)
    left_out: set  # columns init should leave out (the label included)
    label_options: dict = dataclasses.field(default_factory=dict)  # expected label keys besides column and task
    markers: set = dataclasses.field(default_factory=set)  # missing-value markers in the file


def _write(path: pathlib.Path, header: list[str], rows: list[list]) -> pathlib.Path:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _names(names) -> list[str]:
    """scikit-learn's feature names as column names ('mean radius' -> mean_radius)."""
    return [str(n).replace(" ", "_").replace("(", "").replace(")", "") for n in names]


def breast_cancer(directory: pathlib.Path) -> Case:
    """Binary: the Wisconsin breast cancer data (569 rows, 30 measurements), its label written
    as scikit-learn's class names (malignant, benign). Derived: a `patient_id` (P00001, ...,
    unique per row) and a `clinic` of 150 seeded names (a high-cardinality text column)."""
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    rng = random.Random(SEED)
    clinics = [f"clinic-{i:03d}" for i in range(150)]
    header = ["patient_id", *_names(data.feature_names), "clinic", "diagnosis"]
    rows = [
        [f"P{i + 1:05d}", *(f"{v:g}" for v in x), rng.choice(clinics), data.target_names[y]]
        for i, (x, y) in enumerate(zip(data.data, data.target))
    ]
    return Case(
        _write(directory / "breast_cancer.csv", header, rows),
        "diagnosis",
        "binary",
        {"mean_radius": "numeric", "clinic": "categorical"},
        {"patient_id", "diagnosis"},
        {"positive_values": ["malignant"]},  # the rarer class: 212 of 569
    )


def iris(directory: pathlib.Path) -> Case:
    """Multiclass with text classes: Fisher's iris (150 rows), the species by name, its columns
    under scikit-learn's own names ('sepal length (cm)': spaces and parentheses). Derived:
    `1ère mesure`, an ISO-8601 date (seeded, spring 2024), a name with a leading digit, a
    non-ASCII letter and a space: no TensorFlow name, so the pipeline maps it to a feature key."""
    from sklearn.datasets import load_iris

    data = load_iris()
    rng = random.Random(SEED)
    start = datetime.date(2024, 3, 1)
    header = [*data.feature_names, "1ère mesure", "species"]
    rows = [
        [*(f"{v:g}" for v in x), (start + datetime.timedelta(days=rng.randrange(90))).isoformat(), data.target_names[y]]
        for x, y in zip(data.data, data.target)
    ]
    return Case(
        _write(directory / "iris.csv", header, rows),
        "species",
        "multiclass",
        {"sepal length (cm)": "numeric", "1ère mesure": "timestamp"},
        {"species"},
        {"classes": ["setosa", "versicolor", "virginica"]},
    )


def wine(directory: pathlib.Path) -> Case:
    """Multiclass with integer codes: the UCI wine data (178 rows, 13 measurements), the
    cultivar as 0, 1, 2. Derived: `bottled_at` in seconds since 1970 (seeded, 2015 to 2020)
    and `region`, the same text in every row (a constant column). Its column
    od280/od315_of_diluted_wines keeps scikit-learn's name, which is no TensorFlow name (its
    feature key: od280_od315_of_diluted_wines)."""
    from sklearn.datasets import load_wine

    data = load_wine()
    rng = random.Random(SEED)
    header = [*_names(data.feature_names), "bottled_at", "region", "cultivar"]
    rows = [
        [*(f"{v:g}" for v in x), rng.randrange(1_420_070_400, 1_577_836_800), "Piedmont", int(y)]
        for x, y in zip(data.data, data.target)
    ]
    return Case(
        _write(directory / "wine.csv", header, rows),
        "cultivar",
        "multiclass",
        {"alcohol": "numeric", "bottled_at": "timestamp", "od280/od315_of_diluted_wines": "numeric"},
        {"region", "cultivar"},
        {"classes": ["0", "1", "2"]},
    )


def diabetes(directory: pathlib.Path) -> Case:
    """Regression with missing values: the diabetes data (442 rows) unscaled, the target a
    disease progression score. Derived: `sex` written as text (the file's codes 1 and 2 as
    sex_1 and sex_2; the data does not say which is which), about 5% of `bmi` and `bp` blanked
    out (empty cells and '?'), 8 labels blanked out, and `notes`, empty in every row."""
    from sklearn.datasets import load_diabetes

    data = load_diabetes(scaled=False)
    rng = random.Random(SEED)
    names = _names(data.feature_names)
    header = [*names, "notes", "progression"]
    missing_labels = set(rng.sample(range(len(data.target)), 8))
    rows = []
    for i, (x, y) in enumerate(zip(data.data, data.target)):
        cells = {name: f"{v:g}" for name, v in zip(names, x)}
        cells["sex"] = f"sex_{int(x[names.index('sex')])}"
        for name in ("bmi", "bp"):
            if rng.random() < 0.05:
                cells[name] = rng.choice(["", "?"])
        rows.append([*cells.values(), "", "" if i in missing_labels else f"{y:g}"])
    return Case(
        _write(directory / "diabetes.csv", header, rows),
        "progression",
        "regression",
        {"sex": "categorical", "bmi": "numeric", "s1": "numeric"},
        {"notes", "progression"},
        {"missing": "drop"},
        markers={"", "?"},
    )


def boston(directory: pathlib.Path) -> Case:
    """Regression: the Boston house prices file scikit-learn still ships (506 rows, the target
    MEDV; its loader was removed, so the file is read as it is). Derived: `listing_id`, 1 to
    506 (a whole-number ID). CHAS (0/1) and RAD (9 codes) are small whole numbers."""
    source = importlib.resources.files("sklearn.datasets") / "data" / "boston_house_prices.csv"
    with source.open(newline="") as f:
        reader = csv.reader(f)
        next(reader)  # a line of counts before the header
        header = next(reader)
        rows = [[i + 1, *row] for i, row in enumerate(reader)]
    return Case(
        _write(directory / "boston.csv", ["listing_id", *header], rows),
        "MEDV",
        "regression",
        {"CHAS": "categorical", "RAD": "categorical", "CRIM": "numeric"},
        {"listing_id", "MEDV"},
    )


ZOO: dict[str, Callable[[pathlib.Path], Case]] = {
    "breast_cancer": breast_cancer,
    "iris": iris,
    "wine": wine,
    "diabetes": diabetes,
    "boston": boston,
}
