"""The pipeline factory: which components it builds, how they are wired, what TFMA checks."""

import json
import os

import pytest
from tfx.orchestration import pipeline as tfx_pipeline

from pipeline.config import ConfigError, load_config
from pipeline.eval_config import eval_config
from pipeline.pipeline import create_pipeline, example_gen_input
from tests.conftest import ALL_IDS

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _build(tmp_path, *overrides):
    config = load_config(None, list(overrides))
    return create_pipeline(config, pipeline_root=str(tmp_path / "root"), serving_dir=str(tmp_path / "serving"))


def _by_id(pipeline):
    return {c.id: c for c in pipeline.components}


def test_all_components_with_explicit_ids(tmp_path):
    pipeline = _build(tmp_path)
    assert sorted(_by_id(pipeline)) == sorted(ALL_IDS)
    assert isinstance(pipeline, tfx_pipeline.Pipeline)


def test_training_waits_for_the_anomalies_gate(tmp_path):
    nodes = _by_id(_build(tmp_path))
    assert "AnomaliesGate" in {n.id for n in nodes["Transform"].upstream_nodes}
    assert "ExampleValidator" in {n.id for n in nodes["AnomaliesGate"].upstream_nodes}


def test_tuner_can_be_switched_off(tmp_path):
    nodes = _by_id(_build(tmp_path, "tuner.enabled=false"))
    assert "Tuner" not in nodes
    assert "hyperparameters" not in nodes["Trainer"].inputs


def test_tuner_feeds_the_trainer(tmp_path):
    nodes = _by_id(_build(tmp_path))
    assert nodes["Trainer"].inputs["hyperparameters"].producer_component_id == "Tuner"


def test_curated_schema_is_imported(tmp_path):
    schema = tmp_path / "schema.pbtxt"
    schema.write_text("")
    nodes = _by_id(_build(tmp_path, f"schema.path={schema}"))
    assert type(nodes["SchemaGen"]).__name__ == "ImportSchemaGen"


@pytest.mark.parametrize(
    "fmt, cls", [("csv", "CsvExampleGen"), ("tfrecord", "ImportExampleGen"), ("parquet", "FileBasedExampleGen")]
)
def test_example_gen_by_format(tmp_path, fmt, cls):
    assert type(_by_id(_build(tmp_path, f"data.format={fmt}"))["ExampleGen"]).__name__ == cls


def test_csv_is_read_by_the_columnar_executor(tmp_path):
    from components.example_gen.csv_executor import Executor

    assert _by_id(_build(tmp_path))["ExampleGen"].executor_spec.executor_class is Executor


def test_splits_and_evaluation_on_test(tmp_path):
    nodes = _by_id(_build(tmp_path, "data.train_buckets=6", "data.test_buckets=2"))
    splits = nodes["ExampleGen"].exec_properties["output_config"]
    assert '"hash_buckets": 6' in splits and '"name": "test"' in splits
    assert nodes["Evaluator"].exec_properties["example_splits"] == '["test"]'


def test_evaluator_uses_the_resolved_baseline(tmp_path):
    nodes = _by_id(_build(tmp_path))
    assert nodes["Evaluator"].inputs["baseline_model"].producer_component_id == "ServingBaseline"
    assert nodes["Pusher"].inputs["model_blessing"].producer_component_id == "Evaluator"


def test_the_pusher_needs_the_serving_checks_blessing_of_the_model_it_pushes(tmp_path):
    nodes = _by_id(_build(tmp_path))
    assert nodes["Pusher"].inputs["infra_blessing"].producer_component_id == "ServingCheck"
    assert nodes["ServingCheck"].inputs["model"].producer_component_id == "ServingWarmup"
    assert nodes["Pusher"].inputs["model"].producer_component_id == "ServingWarmup"


def test_transform_writes_only_what_the_pipeline_reads(tmp_path):
    transform = _by_id(_build(tmp_path))["Transform"]
    splits = json.loads(transform.exec_properties["splits_config"])
    assert splits == {"analyze": ["train"], "transform": ["train", "eval"]}
    assert transform.exec_properties["force_tf_compat_v1"] == 1
    assert transform.exec_properties["disable_statistics"] == 1
    assert "updated_analyzer_cache" not in transform.outputs
    assert "post_transform_stats" not in transform.outputs


def test_transform_statistics_can_be_switched_on(tmp_path):
    transform = _by_id(_build(tmp_path, "transform.statistics=true"))["Transform"]
    assert transform.exec_properties["disable_statistics"] == 0
    assert "post_transform_stats" in transform.outputs


def test_pusher_writes_to_the_serving_directory(tmp_path):
    nodes = _by_id(_build(tmp_path))
    assert str(tmp_path / "serving") in nodes["Pusher"].exec_properties["push_destination"]


def test_beam_args_come_from_the_config(tmp_path):
    pipeline = _build(tmp_path, "beam.direct_running_mode=multi_threading")
    assert "--direct_running_mode=multi_threading" in pipeline.beam_pipeline_args


@pytest.mark.parametrize(
    "overrides, markers, required, allowed",
    [
        ([], ["", "NA", "N/A", "NaN", "null"], [], {}),
        (["data.missing_values=[NA, '-']", "label.missing=drop"], ["NA", "-"], ["tips", "fare"], {}),
        (["data.format=parquet", "label.missing=drop"], ["", "NA", "N/A", "NaN", "null"], ["tips", "fare"], {}),
    ],
)
def test_examplegen_gets_the_missing_value_markers_and_the_rows_to_drop(
    tmp_path, overrides, markers, required, allowed
):
    from components.example_gen.options import csv_options

    example_gen = _by_id(_build(tmp_path, *overrides))["ExampleGen"]
    assert csv_options(example_gen.exec_properties) == {
        "missing_values": markers,
        "required": required,
        "allowed": allowed,
    }


def test_examplegen_drops_other_classes_with_label_other_classes_drop(tmp_path):
    from components.example_gen.options import csv_options

    config = load_config("package://pipeline/configs/taxi_multiclass.yaml", [f"output_dir={tmp_path}"])
    assert config.label.other_classes == "drop"  # the bundled sample has 8 rows of three other classes
    pipeline = create_pipeline(config, pipeline_root=str(tmp_path / "root"), serving_dir=str(tmp_path / "serving"))
    options = csv_options(_by_id(pipeline)["ExampleGen"].exec_properties)
    assert options["allowed"] == {"payment_type": ["Cash", "Credit Card", "No Charge", "Unknown"]}


def test_parquet_is_read_by_the_marker_aware_executor(tmp_path):
    from components.example_gen.parquet_executor import Executor

    assert _by_id(_build(tmp_path, "data.format=parquet"))["ExampleGen"].executor_spec.executor_class is Executor


def test_examplegen_reads_a_directory_of_gzipped_csv(tmp_path):
    import gzip

    data = tmp_path / "data"
    data.mkdir()
    (data / "a.csv.gz").write_bytes(gzip.compress(b"a,b\n1,2\n"))
    config = load_config(None, [f"data.path={data}"])
    base, input_config = example_gen_input(config)
    assert base == str(data) and [s.pattern for s in input_config.splits] == ["*.csv.gz"]


def test_examplegen_reads_a_glob_as_its_base_and_pattern(tmp_path):
    from pipeline.data_files import data_files

    for day in ("2024-01", "2024-02"):
        (tmp_path / "exports" / day).mkdir(parents=True)
        (tmp_path / "exports" / day / "part-0.csv").write_text("a,b\n1,2\n")
    (tmp_path / "exports" / "2024-02" / "notes.txt").write_text("not data")
    config = load_config(None, [f"data.path={tmp_path}/exports/2024-*/part-*.csv"])
    base, input_config = example_gen_input(config)
    assert base == str(tmp_path / "exports") and [s.pattern for s in input_config.splits] == ["2024-*/part-*.csv"]
    assert data_files(config) == [str(tmp_path / "exports" / d / "part-0.csv") for d in ("2024-01", "2024-02")]


def test_a_glob_that_matches_nothing_and_a_recursive_glob_are_one_line(tmp_path):
    from pipeline.data_files import data_files

    with pytest.raises(ConfigError, match=r"^data path .*/\*.tsv matches no file; fix the pattern"):
        data_files(load_config(None, [f"data.path={tmp_path}/*.tsv"]))
    with pytest.raises(ConfigError, match=r"^data.path: .*'\*\*' \(any depth\) is not supported"):
        load_config(None, [f"data.path={tmp_path}/**/*.csv"])


def test_eval_config_thresholds_and_slices():
    config = load_config(None, ["evaluator.min_auc=0.7", "evaluator.slices=[trip_start_hour, payment_type]"])
    ec = eval_config(config)
    names = {m.class_name for m in ec.metrics_specs[0].metrics}
    assert {"AUC", "BinaryAccuracy", "Precision", "Recall", "F1Score"} <= names
    auc = next(m for m in ec.metrics_specs[0].metrics if m.class_name == "AUC")
    [auc_threshold] = auc.per_slice_thresholds
    assert auc_threshold.threshold.value_threshold.lower_bound.value == 0.7
    assert auc_threshold.threshold.change_threshold.absolute.value < 0
    assert [list(s.feature_keys) for s in auc_threshold.slicing_specs] == [[]]  # overall only
    assert [list(s.feature_keys) for s in ec.slicing_specs] == [[], ["trip_start_hour"], ["payment_type"]]
    assert ec.model_specs[0].label_key == "big_tipper"


def test_a_single_file_is_read_by_pattern(tmp_path):
    from tests.conftest import TINY_CSV

    example_gen = _by_id(_build(tmp_path, f"data.path={TINY_CSV}"))["ExampleGen"]
    assert example_gen.exec_properties["input_base"] == str(TINY_CSV.parent)
    assert '"pattern": "taxi_tiny.csv"' in example_gen.exec_properties["input_config"]


def test_a_directory_of_csv_files_ignores_other_files(tmp_path):
    example_gen = _by_id(_build(tmp_path))["ExampleGen"]
    assert '"pattern": "*.csv"' in example_gen.exec_properties["input_config"]


def test_model_code_changes_reach_the_cache_key(tmp_path, monkeypatch):
    """TFX fingerprints a module_file but not a dotted run_fn path: the code hash stands in."""
    import json

    from pipeline.model_code import model_code_version

    nodes = _by_id(_build(tmp_path))
    for node in ("Transform", "Tuner", "Trainer"):
        assert json.loads(nodes[node].exec_properties["custom_config"])["code_version"] == model_code_version()
    package = tmp_path / "fake_models"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "model.py").write_text("def run_fn(fn_args):\n    return 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    before = model_code_version("fake_models")
    (package / "model.py").write_text("def run_fn(fn_args):\n    return 2\n")
    assert model_code_version("fake_models") != before


def test_what_the_model_code_imports_is_part_of_its_hash(tmp_path, monkeypatch):
    from pipeline.model_code import model_code_sources, model_code_version

    sources = {os.path.relpath(p, REPO) for p in model_code_sources()}
    assert sources >= {"models/model.py", "models/spec.py", "contracts/serving_dir.py"}
    assert not any(p.startswith("pipeline/") for p in sources)  # models/ does not import pipeline/
    root = tmp_path / "code"
    (root / "fake_models").mkdir(parents=True)
    (root / "fake_helpers").mkdir()
    for package in ("fake_models", "fake_helpers"):
        (root / package / "__init__.py").write_text("")
    (root / "fake_models" / "model.py").write_text("import json\nfrom fake_helpers.scale import factor\n")
    (root / "fake_helpers" / "scale.py").write_text("factor = 1\n")
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.setattr("pipeline.model_code.PROJECT_PACKAGES", ("fake_helpers",))
    before = model_code_version("fake_models")
    (root / "fake_helpers" / "scale.py").write_text("factor = 2\n")
    assert model_code_version("fake_models") != before


def test_hashing_the_model_code_imports_none_of_it(tmp_path, monkeypatch):
    """`tfxp run` hashes the model code to tell that nothing changed; importing a module that
    imports TensorFlow would cost that check seconds."""
    import sys

    from pipeline.model_code import model_code_sources

    root = tmp_path / "code"
    for package in ("fake_models", "fake_helpers", "fake_helpers/deeper"):
        (root / package).mkdir(parents=True)
        (root / package / "__init__.py").write_text("")
    imported = "raise RuntimeError('imported')\n"
    (root / "fake_models" / "model.py").write_text(
        "from fake_helpers.options import without_autotune\nfrom fake_helpers.deeper import leaf\n"
    )
    (root / "fake_helpers" / "options.py").write_text(imported + "def without_autotune(d):\n    return d\n")
    (root / "fake_helpers" / "deeper" / "leaf.py").write_text(imported)
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.setattr("pipeline.model_code.PROJECT_PACKAGES", ("fake_helpers",))
    sources = {os.path.relpath(p, root) for p in model_code_sources("fake_models")}
    assert sources == {
        "fake_models/__init__.py",
        "fake_models/model.py",
        "fake_helpers/options.py",
        "fake_helpers/deeper/__init__.py",
        "fake_helpers/deeper/leaf.py",
    }
    assert not {"fake_helpers.options", "fake_helpers.deeper.leaf", "fake_models.model"} & set(sys.modules)


def test_a_serving_platform_adds_the_infra_validator_before_the_pusher(tmp_path):
    from pipeline.pipeline import infra_validation_spec

    config = load_config(None, [f"output_dir={tmp_path}", "serving_check.image=registry.example/tfs:2.21.0"])
    spec = infra_validation_spec(config, "local_docker")
    pipeline = create_pipeline(
        config, pipeline_root=str(tmp_path / "root"), serving_dir=str(tmp_path / "serving"), serving_platform=spec
    )
    nodes = _by_id(pipeline)
    assert nodes["Pusher"].inputs["infra_blessing"].producer_component_id == "InfraValidator"
    assert nodes["InfraValidator"].inputs["model"].producer_component_id == "ServingWarmup"
    assert "ServingCheck" in {node.id for node in nodes["InfraValidator"].upstream_nodes}
    assert spec.tensorflow_serving.image_name == "registry.example/tfs"
    assert list(spec.tensorflow_serving.tags) == ["2.21.0"] and spec.model_name == config.model_name
    assert spec.WhichOneof("serving_platform") == "local_docker"


def test_a_serving_image_without_a_tag_is_refused(tmp_path):
    from pipeline.pipeline import infra_validation_spec

    config = load_config(None, ["serving_check.image=tensorflow/serving"])
    with pytest.raises(ValueError, match="needs a tag"):
        infra_validation_spec(config, "local_docker")


def test_a_trainer_setting_leaves_the_transform_configuration_alone(tmp_path):
    def configs(*overrides):
        nodes = _by_id(_build(tmp_path, *overrides))
        return (nodes["Transform"].exec_properties["custom_config"], nodes["Trainer"].exec_properties["custom_config"])

    transform, trainer = configs()
    transform_changed, trainer_changed = configs("trainer.train_steps=7", "tuner.max_trials=9")
    assert transform_changed == transform  # a cache hit: Transform does not run again
    assert trainer_changed != trainer
    assert set(json.loads(transform)) == {"label", "features", "crosses", "code_version"}


def test_the_transform_gets_the_crosses(tmp_path):
    """The preprocessing_fn computes the crosses: they are in Transform's custom_config."""
    config = load_config("package://pipeline/configs/taxi_timestamp.yaml", [f"output_dir={tmp_path}"])
    pipeline = create_pipeline(config, pipeline_root=str(tmp_path / "root"), serving_dir=str(tmp_path / "serving"))
    transform = json.loads(_by_id(pipeline)["Transform"].exec_properties["custom_config"])
    assert transform["crosses"] == config.model_code_config()["crosses"] and len(transform["crosses"]) == 2


def _metrics(spec):
    return {m.class_name: m for m in spec.metrics}


def _bounds(metric):
    [per_slice] = metric.per_slice_thresholds
    assert [list(s.feature_keys) for s in per_slice.slicing_specs] == [[]]  # overall only
    return per_slice.threshold


def test_eval_config_of_a_multiclass_task():
    config = load_config("package://pipeline/configs/taxi_multiclass.yaml", ["evaluator.min_macro_f1=0.4"])
    ec = eval_config(config)
    assert ec.model_specs[0].label_key == "payment_class" and ec.model_specs[0].prediction_key == "probabilities"
    overall, per_class, macro = ec.metrics_specs
    metrics = _metrics(overall)
    assert {"ExampleCount", "SparseCategoricalAccuracy", "MultiClassConfusionMatrixPlot"} == set(metrics)
    accuracy = _bounds(metrics["SparseCategoricalAccuracy"])
    assert json.loads(metrics["SparseCategoricalAccuracy"].config) == {"name": "accuracy"}
    assert accuracy.value_threshold.lower_bound.value == 0.8
    assert accuracy.change_threshold.absolute.value == -0.01
    assert set(_metrics(per_class)) == {"Precision", "Recall", "F1Score", "AUC"}
    assert list(per_class.binarize.class_ids.values) == [0, 1, 2, 3]
    assert not any(m.per_slice_thresholds for m in per_class.metrics)  # thresholds judge the macro average
    assert macro.aggregate.macro_average and dict(macro.aggregate.class_weights) == {i: 1.0 for i in range(4)}
    assert _bounds(_metrics(macro)["F1Score"]).value_threshold.lower_bound.value == 0.4
    assert not _metrics(macro)["AUC"].per_slice_thresholds  # no min_auc set


def test_eval_config_of_a_regression_task():
    config = load_config("package://pipeline/configs/taxi_regression.yaml", ["evaluator.max_rmse=9"])
    ec = eval_config(config)
    assert ec.model_specs[0].prediction_key == "predictions"
    [spec] = ec.metrics_specs
    metrics = _metrics(spec)
    assert {
        "ExampleCount",
        "MeanAbsoluteError",
        "MeanSquaredError",
        "RootMeanSquaredError",
        "MeanAbsolutePercentageError",
        "Calibration",
    } <= set(metrics)
    mae = _bounds(metrics["MeanAbsoluteError"])
    assert mae.value_threshold.upper_bound.value == 4.0 and not mae.value_threshold.HasField("lower_bound")
    assert mae.change_threshold.absolute.value == 0.25
    assert mae.change_threshold.direction == 1  # LOWER_IS_BETTER
    assert _bounds(metrics["RootMeanSquaredError"]).value_threshold.upper_bound.value == 9


def test_the_evaluator_fills_the_classes_of_a_model_that_learned_them(tmp_path):
    from google.protobuf import json_format
    from tensorflow_model_analysis.proto import config_pb2

    from components.evaluator.executor import with_class_ids

    config = load_config(
        "package://pipeline/configs/taxi_multiclass.yaml", ["label.classes=[]", "label.other_classes=error"]
    )
    unfilled = json_format.MessageToJson(eval_config(config))
    parsed = json_format.Parse(unfilled, config_pb2.EvalConfig())
    assert parsed.metrics_specs[1].HasField("binarize") and not parsed.metrics_specs[1].binarize.class_ids.values
    with pytest.raises(ValueError, match="has no .*classes.txt to name its classes; set label.classes"):
        with_class_ids(unfilled, str(tmp_path))
    (tmp_path / "assets.extra").mkdir()
    (tmp_path / "assets.extra" / "classes.txt").write_text("Cash\nCredit Card\nUnknown\n")
    filled = json_format.Parse(with_class_ids(unfilled, str(tmp_path)), config_pb2.EvalConfig())
    assert list(filled.metrics_specs[1].binarize.class_ids.values) == [0, 1, 2]
    assert dict(filled.metrics_specs[2].aggregate.class_weights) == {0: 1.0, 1: 1.0, 2: 1.0}
    listed = json_format.MessageToJson(eval_config(load_config("package://pipeline/configs/taxi_multiclass.yaml")))
    assert with_class_ids(listed, str(tmp_path)) == listed  # label.classes named them: left alone


def test_no_inference_step_unless_inference_data_path_is_set(tmp_path):
    assert not {"InferenceRows", "BulkInferrer"} & set(_by_id(_build(tmp_path)))


@pytest.mark.parametrize(
    "config, signature, column",
    [
        (None, "classify", "classify_output"),
        ("package://pipeline/configs/taxi_regression.yaml", "regress", "regress_output"),
    ],
)
def test_inference_data_path_adds_the_bulk_inferrer_fed_by_the_blessed_model(tmp_path, config, signature, column):
    from google.protobuf import json_format
    from tfx.proto import bulk_inferrer_pb2

    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "rows.csv").write_text("a\n1\n")
    built = load_config(config, [f"inference.data_path={tmp_path / 'new' / 'rows.csv'}"])
    nodes = _by_id(create_pipeline(built, pipeline_root=str(tmp_path / "root"), serving_dir=str(tmp_path / "s")))
    rows, inferrer = nodes["InferenceRows"], nodes["BulkInferrer"]
    assert type(rows).__name__ == "InferenceRows"
    assert rows.exec_properties["input_pattern"] == str(tmp_path / "new" / "rows.csv")
    assert rows.exec_properties["data_format"] == "csv"
    # The missing-value markers, without the label's row filters: new rows have no label.
    assert json.loads(rows.exec_properties["missing_values"]) == list(built.data.missing_values)
    # Typed by the model that scores them: the blessed candidate, as BulkInferrer gets it.
    assert rows.inputs["model"].producer_component_id == "ServingWarmup"
    assert inferrer.inputs["examples"].producer_component_id == "InferenceRows"
    assert inferrer.inputs["model"].producer_component_id == "ServingWarmup"
    assert inferrer.inputs["model_blessing"].producer_component_id == "Evaluator"
    model_spec = bulk_inferrer_pb2.ModelSpec()
    json_format.Parse(inferrer.exec_properties["model_spec"], model_spec)
    assert list(model_spec.model_signature_name) == [signature]
    output = bulk_inferrer_pb2.OutputExampleSpec()
    json_format.Parse(inferrer.exec_properties["output_example_spec"], output)
    assert output.output_columns_spec[0].HasField(column)
    assert "output_examples" in inferrer.outputs


def test_inference_options_are_checked_with_their_key(tmp_path):
    with pytest.raises(ConfigError, match=r"^inference\.format: applies to inference\.data_path"):
        load_config(None, ["inference.format=parquet"])
    with pytest.raises(ConfigError, match=r"^inference: unknown option 'data_pth' \(did you mean 'data_path'\?\)"):
        load_config(None, ["inference.data_pth=x.csv"])
