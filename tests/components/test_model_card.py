"""The model card (components/model_card): its rendering from the facts a tiny recorded run gave
(tests/components/data/model_card_tiny_run.json, the card.json of a run on tests/data/taxi_tiny.csv),
its gathering from artifacts on disk, the training code's commit, and `tfxp model-card`."""

from __future__ import annotations

import html.parser
import json
import math
import pathlib
import types

import pytest

from components.model_card import card

RECORDED = pathlib.Path(__file__).parent / "data" / "model_card_tiny_run.json"


@pytest.fixture
def facts() -> dict:
    return json.loads(RECORDED.read_text())


def test_the_markdown_has_every_section_with_the_runs_figures(facts):
    text = card.render_markdown(facts)
    titles = [line[3:] for line in text.splitlines() if line.startswith("## ")]
    assert titles == [
        "Model details",
        "Intended use",
        "Limitations",
        "Training data",
        "Features and schema",
        "Evaluation",
        "Hyperparameters",
        "Serving check",
    ]
    assert text.startswith(f"# Model card: taxi, version {facts['version']}\n")
    assert "| train | 68 |\n| eval | 6 |\n| test | 6 |" in text
    assert "| `tips` | FLOAT | label (big_tipper) |" in text
    assert "| `dropoff_census_tract` | INT | not a model input |" in text
    assert "label `tips`, positive when above 0.2 x `fare`" in text
    # The overall metrics, the gate that judged them and where it came from.
    assert (
        "| auc | 0.8 | >= 0.52 (first-run gate: class priors 0.5 + margin 0.02 (evaluator.first_run_margin)) |" in text
    )
    assert "| example_count | 6 |  |" in text
    assert "| trip_start_hour=1 | 0 | 0 | 0 | 0 | 0 | 2 |" in text
    assert "| trip_start_hour=18 | 0 | 1 | nan | nan | nan | 1 |" in text  # no positive predictions
    assert "| first_units | 16 |" in text and "From the Tuner's best trial (KerasTuner):" in text
    assert "- passed (in process: TF1 session loader" in text
    assert "Owners: ml-team" in text
    assert "git commit `unknown (not run from a git checkout)`, package tfx-kfp-pipeline 0.1.0" in text
    assert "Baseline: none; nothing was served yet." in text
    assert "held-out test split of span 0 (6 rows)" in text


def test_the_config_says_the_intended_use_and_limitations(facts):
    facts.update(intended_use="Ranks trips for a tipping study.", limitations=["Chicago only."], owners=[])
    text = card.render_markdown(facts)
    assert "## Intended use\n\nRanks trips for a tipping study.\n" in text
    assert "## Limitations\n\n- Chicago only.\n- The metrics are of the held-out test split" in text
    assert "Owners: not stated (model_card.owners)" in text


def test_a_baseline_adds_its_values_the_change_and_the_change_threshold(facts):
    facts["baseline"] = "/srv/serving/taxi/1796500000"
    facts["metrics"]["baseline"] = {"auc": 0.75, "binary_accuracy": 0.7}
    facts["metrics"]["thresholds"].append(
        {"metric": "auc", "relation": ">=", "bound": -0.01, "change": True, "source": "evaluator.max_auc_decrease"}
    )
    text = card.render_markdown(facts)
    assert "| metric | test split | thresholds | baseline | change |" in text
    assert "change >= -0.01 (evaluator.max_auc_decrease) | 0.75 | +0.05 |" in text
    assert "| binary_accuracy | 0.6667 |  | 0.7 | -0.03333 |" in text
    assert "Baseline: `/srv/serving/taxi/1796500000`, the version served when the run started." in text
    assert "judged by value thresholds only" not in text


def test_a_multiclass_card_names_its_classes(facts):
    facts["task"] = "multiclass"
    facts["label"] = {"column": "payment_type", "name": "payment_type", "task": "multiclass"}
    facts["class_names"] = ["Cash", "Credit Card"]
    facts["metrics"]["overall"] = {
        "accuracy": 0.9,
        "macro_f1_score": 0.8,
        "precision/classId:0": 0.95,
        "precision/classId:1": 0.85,
        "example_count": 6.0,
    }
    text = card.render_markdown(facts)
    assert "classes: Cash, Credit Card" in text
    assert "| Cash | 0.95 |  |  |  |" in text and "| Credit Card | 0.85 |  |  |  |" in text
    assert "| accuracy | 0.9 |" in text


class _Tags(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.stack, self.seen = [], []

    def handle_starttag(self, tag, attrs):
        if tag not in ("meta",):
            self.stack.append(tag)
        self.seen.append(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, (self.stack, tag)
        self.stack.pop()


def test_the_html_is_one_balanced_page_with_text_escaped(facts):
    facts["intended_use"] = "Scores <script>alert(1)</script> & more"
    page = card.render_html(facts)
    parser = _Tags()
    parser.feed(page)
    assert parser.stack == []
    assert parser.seen.count("h2") == 8 and "table" in parser.seen
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in page and "<script>" not in page
    assert "<td>auc</td><td>0.8</td>" in page
    assert "<code>tips</code>" in page


def test_markdown_table_cells_escape_pipes(facts):
    facts["hyperparameters"] = {"note": "a|b"}
    assert '| note | "a\\|b" |' in card.render_markdown(facts)


def test_the_json_is_strict(facts):
    text = card.to_json(facts)
    loaded = json.loads(text)  # strict: NaN would be a syntax error for most readers
    assert "NaN" not in text
    assert loaded["metrics"]["slices"][1]["metrics"]["precision"] is None
    assert math.isnan(facts["metrics"]["slices"][1]["metrics"]["precision"])


def _write_artifacts(tmp_path: pathlib.Path) -> card.RunRecord:
    from tensorflow_metadata.proto.v0 import statistics_pb2

    statistics = {}
    for split, rows in (("train", 68), ("eval", 6), ("test", 6)):
        path = tmp_path / "stats" / f"Split-{split}" / "FeatureStats.pb"
        path.parent.mkdir(parents=True)
        stats = statistics_pb2.DatasetFeatureStatisticsList()
        stats.datasets.add(num_examples=rows)
        path.write_bytes(stats.SerializeToString())
        statistics[split] = str(path)
    schema = tmp_path / "schema.pbtxt"
    schema.write_text(
        'feature { name: "fare" type: FLOAT presence { min_fraction: 1.0 } }\n'
        'feature { name: "tips" type: FLOAT }\nfeature { name: "company" type: BYTES }\n'
        'feature { name: "unique_key" type: BYTES }\n'
    )
    evaluation = tmp_path / "evaluation"
    evaluation.mkdir()
    gate = {"metric": "auc", "threshold": 0.52, "higher_is_better": True, "naive": "class priors"}
    gate.update(naive_value=0.5, margin=0.02)
    (evaluation / "first_run_gates.json").write_text(json.dumps([gate]))
    hyper = tmp_path / "best_hyperparameters.txt"
    hyper.write_text(json.dumps({"space": [], "values": {"learning_rate": 0.01, "num_layers": 2}}))
    model = tmp_path / "model" / "assets.extra"
    model.mkdir(parents=True)
    (model / "classes.txt").write_text("0\n1\n")
    settings = {
        "intended_use": "Ranks trips.",
        "limitations": ["Chicago only."],
        "owners": ["ml-team"],
        "model_name": "taxi",
        "model": {
            "label": {"column": "tips", "name": "big_tipper", "task": "binary", "greater_than_fraction_of": "fare"},
            "features": {"fare": {"type": "numeric"}, "company": {"type": "categorical"}},
            "crosses": [],
            "trainer": {"learning_rate": 0.1},
        },
        "code_version": "abc123",
        "code": {"git_commit": "0123abcd", "package_version": "0.1.0"},
    }
    return card.RunRecord(
        model_name="taxi",
        version=1796500001,
        pushed_at="2026-12-06T00:00:00+00:00",
        settings=settings,
        model_dir=str(tmp_path / "model"),
        pipeline="taxi-big-tipper",
        run_id="run-1",
        span=3,
        statistics=statistics,
        schema=str(schema),
        evaluation=str(evaluation),
        blessed=True,
        baseline="/srv/serving/taxi/1796500000",
        hyperparameters=str(hyper),
        serving_checks=["passed (in process)"],
    )


def test_gather_reads_the_artifacts(tmp_path, monkeypatch):
    from tensorflow_model_analysis.proto import config_pb2

    from pipeline.config import load_config
    from pipeline.eval_config import eval_config

    config = eval_config(load_config(None, ["evaluator.min_auc=0.6"]))
    candidate = types.SimpleNamespace(
        slicing_metrics=[
            ((), {"": {"": {"auc": {"doubleValue": 0.8}, "example_count": {"doubleValue": 6.0}}}}),
            (
                (("trip_start_hour", 3),),
                {"": {"": {"auc": {"doubleValue": 0.5}, "example_count": {"doubleValue": 2.0}}}},
            ),
        ],
        config=config,
    )
    baseline = types.SimpleNamespace(slicing_metrics=[((), {"": {"": {"auc": {"doubleValue": 0.7}}}})], config=None)
    monkeypatch.setattr(card, "eval_results", lambda uri: (candidate, baseline))
    facts = card.gather(_write_artifacts(tmp_path))
    assert facts["data"] == {"span": 3, "rows": {"train": 68, "eval": 6, "test": 6}}
    assert facts["features"] == [
        {"name": "fare", "type": "FLOAT", "min_fraction": 1.0, "use": "numeric"},
        {"name": "tips", "type": "FLOAT", "use": "label (big_tipper)"},
        {"name": "company", "type": "BYTES", "use": "categorical"},
        {"name": "unique_key", "type": "BYTES", "use": "not a model input"},
    ]
    assert facts["metrics"]["overall"] == {"auc": 0.8, "example_count": 6.0}
    assert facts["metrics"]["slices"] == [{"slice": "trip_start_hour=3", "metrics": {"auc": 0.5, "example_count": 2.0}}]
    assert facts["metrics"]["baseline"] == {"auc": 0.7}
    thresholds = {(t["metric"], t["change"]): t for t in facts["metrics"]["thresholds"]}
    assert thresholds[("auc", False)]["bound"] == 0.6 and thresholds[("auc", False)]["source"] == "evaluator.min_auc"
    assert thresholds[("auc", True)]["source"] == "evaluator.max_auc_decrease"
    assert isinstance(config, config_pb2.EvalConfig)
    assert facts["hyperparameters"] == {"learning_rate": 0.01, "num_layers": 2}
    assert facts["hyperparameters_source"] == "the Tuner's best trial (KerasTuner)"
    assert facts["class_names"] == ["0", "1"]
    assert facts["code"] == {"git_commit": "0123abcd", "package_version": "0.1.0", "model_code_hash": "abc123"}
    text = card.render_markdown(facts)
    assert (
        "| auc | 0.8 | >= 0.6 (evaluator.min_auc); change >= -0.01 (evaluator.max_auc_decrease) | 0.7 | +0.1 |" in text
    )


def test_without_a_tuner_the_trainer_config_is_the_hyperparameters(tmp_path, monkeypatch):
    record = _write_artifacts(tmp_path)
    record.hyperparameters = None
    record.evaluation = None
    facts = card.gather(record)
    assert facts["hyperparameters"] == {"learning_rate": 0.1}
    assert facts["hyperparameters_source"] == "the trainer config (no Tuner in this run)"
    assert facts["metrics"]["overall"] == {}


def _fake_git(root: pathlib.Path, worktree: bool, packed: bool) -> pathlib.Path:
    common = root / "repo" / ".git"
    (common / "refs" / "heads").mkdir(parents=True)
    commit = "c0ffee" * 6 + "abcd"
    if packed:
        (common / "packed-refs").write_text(f"# pack-refs with: peeled\n{commit} refs/heads/main\n")
    else:
        (common / "refs" / "heads" / "main").write_text(commit + "\n")
    if not worktree:
        (common / "HEAD").write_text("ref: refs/heads/main\n")
        source = root / "repo" / "components"
    else:
        gitdir = common / "worktrees" / "wt"
        gitdir.mkdir(parents=True)
        (gitdir / "HEAD").write_text("ref: refs/heads/main\n")
        (gitdir / "commondir").write_text("../..\n")
        (root / "wt").mkdir()
        (root / "wt" / ".git").write_text(f"gitdir: {gitdir}\n")
        source = root / "wt" / "components"
    source.mkdir(parents=True)
    return source


@pytest.mark.parametrize("worktree, packed", [(False, False), (True, False), (False, True)])
def test_the_commit_is_read_without_the_git_program(tmp_path, worktree, packed):
    source = _fake_git(tmp_path, worktree, packed)
    assert card._head_commit(str(source)) == "c0ffee" * 6 + "abcd"


def test_outside_a_checkout_there_is_no_commit(tmp_path):
    assert card._head_commit(str(tmp_path)) is None


def test_tfxp_model_card_prints_the_path_or_one_line(tmp_path, capsys):
    from tests.serving import fake_saved_model
    from tfxp.main import main

    serving = tmp_path / "serving" / "taxi" / "1796500001"
    fake_saved_model.write(serving, "v1")
    args = ["model-card", "--set", f"output_dir={tmp_path}"]
    assert main(args) == 2
    assert "version 1796500001 has no model card" in capsys.readouterr().err
    (serving / "assets.extra").mkdir(exist_ok=True)
    (serving / "assets.extra" / "model_card.md").write_text("# card\n")
    (serving / "assets.extra" / "model_card.html").write_text("<html></html>\n")
    assert main(args) == 0
    assert capsys.readouterr().out.strip() == str(serving / "assets.extra" / "model_card.md")
    assert main([*args, "1796500001", "--format", "html"]) == 0
    assert capsys.readouterr().out.strip().endswith("assets.extra/model_card.html")
    assert main([*args, "123"]) == 2
    err = capsys.readouterr().err
    assert err == f"error: version 123 is not served from {tmp_path}/serving/taxi; served versions: 1796500001\n"
