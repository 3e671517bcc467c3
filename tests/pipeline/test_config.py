"""The typed configuration: defaults, overrides and the errors a user sees."""

import pathlib

import pytest

from pipeline.config import ConfigError, DataFormat, FeatureType, load_config, parse_config, resolve_path

MINIMAL = {
    "pipeline_name": "p",
    "model_name": "m",
    "data": {"path": "data.csv"},
    "label": {"column": "y"},
    "features": {"x": {"type": "numeric"}, "c": "categorical"},
}


def test_bundled_config_reads_the_sample_from_the_installed_tfx_package(taxi_config):
    import tfx

    assert taxi_config.data.path.startswith(str(pathlib.Path(tfx.__file__).parent))
    assert pathlib.Path(taxi_config.data.path, "data.csv").is_file()
    assert taxi_config.label.greater_than_fraction_of == "fare"
    assert taxi_config.features["company"].type is FeatureType.CATEGORICAL


def test_minimal_config_gets_defaults(tmp_path):
    config = parse_config(MINIMAL, base=tmp_path)
    assert config.data.path == str(tmp_path / "data.csv")
    assert config.data.format is DataFormat.CSV
    assert config.features["c"].type is FeatureType.CATEGORICAL
    assert config.tuner.enabled and config.enable_cache
    assert config.serving_dir.endswith("serving/m")


def test_overrides_parse_values_as_yaml():
    config = load_config(
        None,
        ["trainer.train_steps=7", "tuner.enabled=false", "beam.extra_args=[--a=1, --b=2]", "evaluator.slices=[fare]"],
    )
    assert config.trainer.train_steps == 7
    assert config.tuner.enabled is False
    assert config.beam.args()[-2:] == ["--a=1", "--b=2"]
    assert config.evaluator.slices == ("fare",)


def test_beam_args_for_the_direct_runner():
    config = load_config(
        None, ["beam.direct_running_mode=in_memory", "beam.direct_num_workers=1", "beam.extra_args=[]"]
    )
    assert config.beam.args() == ["--runner=DirectRunner", "--direct_running_mode=in_memory", "--direct_num_workers=1"]


def test_reusing_workers_selects_the_warm_workers_runner():
    config = load_config(
        None,
        [
            "beam.direct_running_mode=multi_processing",
            "beam.direct_num_workers=2",
            "beam.reuse_workers=true",
            "beam.extra_args=[]",
        ],
    )
    assert config.beam.args() == [
        "--runner=pipeline.beam_workers.WarmWorkersRunner",
        "--direct_running_mode=multi_processing",
        "--direct_num_workers=2",
    ]
    for mode in ("in_memory", "multi_threading"):  # workers of their own to keep: none
        config = load_config(None, [f"beam.direct_running_mode={mode}", "beam.reuse_workers=true"])
        assert config.beam.args()[0] == "--runner=DirectRunner"
    config = load_config(None, ["beam.runner=FlinkRunner", "beam.reuse_workers=true", "beam.extra_args=[]"])
    assert config.beam.args() == ["--runner=FlinkRunner"]


def test_auto_mode_runs_large_inputs_with_a_kept_worker_per_core():
    from pipeline.config import AUTO_MULTI_PROCESSING_BYTES, DirectRunningMode

    config = load_config(None, ["beam.extra_args=[]"])
    assert config.beam.direct_running_mode is DirectRunningMode.AUTO
    large, small = AUTO_MULTI_PROCESSING_BYTES, AUTO_MULTI_PROCESSING_BYTES - 1
    assert config.beam.direct_mode(large, cores=4) == (DirectRunningMode.MULTI_PROCESSING, 4)
    assert config.beam.direct_mode(small, cores=4) == (DirectRunningMode.IN_MEMORY, 1)
    assert config.beam.direct_mode(large, cores=1) == (DirectRunningMode.IN_MEMORY, 1)
    assert config.beam.direct_mode(None, cores=4) == (DirectRunningMode.IN_MEMORY, 1)  # size unknown
    args = config.beam.args(data_bytes=large)
    assert args[:2] == ["--runner=pipeline.beam_workers.WarmWorkersRunner", "--direct_running_mode=multi_processing"]
    assert config.beam.args(data_bytes=small) == [
        "--runner=DirectRunner",
        "--direct_running_mode=in_memory",
        "--direct_num_workers=1",
    ]
    # A compiled pipeline's steps do not see the data when it is compiled: in_memory.
    assert config.beam.args(compiled=True, data_bytes=large)[1] == "--direct_running_mode=in_memory"
    pinned = load_config(None, ["beam.direct_num_workers=3"])
    assert pinned.beam.direct_mode(large, cores=2) == (DirectRunningMode.MULTI_PROCESSING, 3)
    kept_off = load_config(None, ["beam.reuse_workers=false"])
    assert kept_off.beam.args(data_bytes=large)[0] == "--runner=DirectRunner"


def test_a_chosen_mode_ignores_the_data_size():
    from pipeline.config import AUTO_MULTI_PROCESSING_BYTES, DirectRunningMode

    config = load_config(None, ["beam.direct_running_mode=in_memory"])
    assert config.beam.direct_mode(10 * AUTO_MULTI_PROCESSING_BYTES, cores=8) == (DirectRunningMode.IN_MEMORY, 1)
    config = load_config(None, ["beam.direct_running_mode=multi_processing"])
    assert config.beam.direct_mode(1, cores=8) == (DirectRunningMode.MULTI_PROCESSING, 1)


def test_other_runners_take_their_flags_verbatim():
    config = load_config(None, ["beam.runner=DataflowRunner", "beam.extra_args=[--region=x]"])
    assert config.beam.args() == ["--runner=DataflowRunner", "--region=x"]


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["trainer.train_stpes=5"], "unknown option 'train_stpes' (did you mean 'train_steps'?)"),
        (["trainer.train_steps=many"], "trainer.train_steps: expected a number"),
        (["trainer.train_steps=0"], "trainer.train_steps: must be at least 1, got 0"),
        (["tuner.enabled=maybe"], "tuner.enabled: expected true or false"),
        (["features.fare.type=fancy"], "'fancy' is not one of: numeric, bucketized, categorical, timestamp"),
        (["features.fare.num_bucket=3"], "did you mean 'num_buckets'"),
        (["data.format=xml"], "'xml' is not one of: csv, tfrecord, parquet"),
        (["label.other_classes=keep"], "label.other_classes: 'keep' is not one of: error, drop"),
        (["label.other_classes=drop"], "label.other_classes: applies to label.classes (multiclass)"),
        (["beam.direct_running_mode=fast"], "is not one of: auto, in_memory, multi_threading, multi_processing"),
        (["pipline_name=x"], "unknown option 'pipline_name' (did you mean 'pipeline_name'?)"),
        (["features.tips.type=numeric"], "label.column: 'tips' is also listed under features"),
        (["evaluator.min_auc=2"], "evaluator.min_auc: must lie between 0 and 1, got 2.0"),
        (["evaluator.first_run_margin=-0.1"], "evaluator.first_run_margin: must lie between 0 and 1, got -0.1"),
        (["trainer"], "is not of the form KEY=VALUE"),
        (
            ["features.company.vocabulary=fuzzy"],
            "features.company.vocabulary: 'fuzzy' is not one of: approximate, exact",
        ),
        (["features.company.top_k=0"], "features.company.top_k: must be at least 1, got 0"),
        (
            ["features.company.top_k=300000"],
            "features.company.top_k: 300000 is above 200000, the limit of an approximate "
            "vocabulary; set vocabulary: exact",
        ),
    ],
)
def test_bad_options_say_what_is_wrong(overrides, message):
    with pytest.raises(ConfigError) as err:
        load_config(None, overrides)
    assert message in str(err.value)


def test_missing_sections_are_named():
    with pytest.raises(ConfigError, match="data.path: missing required option"):
        parse_config({**MINIMAL, "data": {}})
    with pytest.raises(ConfigError, match="features: must map each feature"):
        parse_config({k: v for k, v in MINIMAL.items() if k != "features"})
    with pytest.raises(
        ConfigError,
        match=r"features.x.type: missing required option \(one of: numeric, bucketized, "
        r"categorical, timestamp\)",
    ):
        parse_config({**MINIMAL, "features": {"x": {}}})


def test_config_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(str(tmp_path / "nope.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(str(bad))


def test_package_paths_name_missing_packages():
    with pytest.raises(ConfigError, match="package 'no_such_package' is not installed"):
        resolve_path("package://no_such_package/data")


def test_model_config_is_plain_json(taxi_config):
    import json

    plain = json.loads(json.dumps(taxi_config.model_code_config()))
    assert plain["features"]["fare"]["type"] == "numeric"
    assert plain["label"]["column"] == "tips"


def test_relative_paths_on_the_command_line_mean_the_current_directory(tmp_path, monkeypatch):
    (tmp_path / "drops").mkdir()
    monkeypatch.chdir(tmp_path)
    config = load_config(None, ["data.path=drops", "schema.path=schema/schema.pbtxt"])
    assert config.data.path == str(tmp_path / "drops")
    assert config.schema.path == str(tmp_path / "schema" / "schema.pbtxt")


def test_spans_and_drift_options_are_checked():
    with pytest.raises(ConfigError, match=r"data.span_pattern: 'drops/\*.csv' has no \{SPAN\}"):
        load_config(None, ["data.span_pattern=drops/*.csv"])
    with pytest.raises(ConfigError, match="drift.features: 'colour' is not a feature"):
        load_config(None, ["drift.features=[colour]"])
    with pytest.raises(ConfigError, match=r"drift.numeric_threshold: must lie in \(0, 1\], got 0"):
        load_config(None, ["drift.numeric_threshold=0"])
    config = load_config(None, ["data.span_pattern=span-{SPAN}/*.csv", "drift.accept=true"])
    assert config.data.span_pattern == "span-{SPAN}/*.csv" and config.drift.accept is True


def test_a_minimal_config_runs_with_the_bundled_configs_settings(tmp_path):
    # One set of defaults: a config with only names, data, label and features gets the
    # Beam, Tuner, Trainer, ... settings the bundled config runs with.
    import yaml

    from pipeline.config import DEFAULT_CONFIG

    bundled = load_config(None)
    raw = yaml.safe_load(open(resolve_path(DEFAULT_CONFIG)))
    minimal = {key: raw[key] for key in ("pipeline_name", "model_name", "data", "label", "features")}
    (tmp_path / "minimal.yaml").write_text(yaml.safe_dump(minimal))
    config = load_config(str(tmp_path / "minimal.yaml"))
    for section in ("data", "transform", "tuner", "trainer", "drift", "serving_check", "beam", "kubeflow", "schema"):
        assert getattr(config, section) == getattr(bundled, section), section
    assert config.beam.args() == bundled.beam.args()
    assert config.beam.direct_running_mode == "auto" and "--no_pipeline_type_check" in config.beam.args()
    assert config.evaluator.model_copy(update={"slices": ()}) == bundled.evaluator.model_copy(update={"slices": ()})


# ------------------------------------------------------------------------- label.task

MULTICLASS = "package://pipeline/configs/taxi_multiclass.yaml"
REGRESSION = "package://pipeline/configs/taxi_regression.yaml"


def test_binary_is_the_default_task_and_defaults_to_a_change_threshold_only(taxi_config):
    from pipeline.config import Task

    assert taxi_config.label.task is Task.BINARY
    # No value threshold by default: the Evaluator's first-run gate, from the data, sets AUC's.
    assert parse_config(MINIMAL).evaluator.thresholds(Task.BINARY) == {"max_auc_decrease": 0.01}
    assert parse_config(MINIMAL).evaluator.first_run_margin == 0.02


def test_the_bundled_task_configs_load():
    from pipeline.config import Task

    multiclass, regression = load_config(MULTICLASS), load_config(REGRESSION)
    assert multiclass.label.task is Task.MULTICLASS and multiclass.label.classes[:2] == ("Cash", "Credit Card")
    assert "payment_type" not in multiclass.features
    assert multiclass.evaluator.thresholds(Task.MULTICLASS) == {"min_accuracy": 0.8, "max_accuracy_decrease": 0.01}
    assert regression.label.task is Task.REGRESSION and regression.label.log_transform
    assert regression.trainer.loss == "huber"
    assert regression.evaluator.thresholds(Task.REGRESSION) == {"max_mae": 4.0, "max_mae_increase": 0.25}


def test_integer_classes_are_read_as_their_text():
    config = parse_config({**MINIMAL, "label": {"column": "y", "task": "multiclass", "classes": [3, 1, 2]}})
    assert config.label.classes == ("3", "1", "2")


@pytest.mark.parametrize(
    "path, overrides, message",
    [
        (None, ["label.task=ordinal"], "label.task: 'ordinal' is not one of: binary, multiclass, regression"),
        (
            None,
            ["label.task=regression"],
            "label.greater_than_fraction_of: is an option of label.task binary, not regr",
        ),
        (MULTICLASS, ["label.positive_values=[Cash]"], "label.positive_values: is an option of label.task binary"),
        (None, ["label.classes=[a, b]"], "label.classes: is an option of label.task multiclass, not binary"),
        (MULTICLASS, ["label.log_transform=true"], "label.log_transform: is an option of label.task regression"),
        (MULTICLASS, ["label.classes=[Cash, Cash, Unknown]"], "label.classes: lists 'Cash' more than once"),
        (MULTICLASS, ["label.classes=[Cash]"], "label.classes: needs at least 2 classes"),
        (REGRESSION, ["trainer.loss=mae"], "trainer.loss: 'mae' is not one of: mse, huber"),
        (None, ["trainer.loss=huber"], "trainer.loss: is an option of label.task regression (mse, huber); binary"),
        (
            REGRESSION,
            ["evaluator.min_auc=0.7"],
            "evaluator.min_auc: does not apply to label.task regression; its "
            "thresholds are: max_mae, max_mae_increase, max_rmse, max_rmse_increase",
        ),
        (None, ["evaluator.max_mae=3"], "evaluator.max_mae: does not apply to label.task binary"),
        (None, ["evaluator.min_macro_f1=0.5"], "evaluator.min_macro_f1: does not apply to label.task binary"),
        (MULTICLASS, ["evaluator.min_accuracy=1.5"], "evaluator.min_accuracy: must lie between 0 and 1, got 1.5"),
        (REGRESSION, ["evaluator.max_mae=-1"], "evaluator.max_mae: must not be negative, got -1"),
    ],
)
def test_task_options_are_validated_against_the_task(path, overrides, message):
    with pytest.raises(ConfigError) as err:
        load_config(path, overrides)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


# ------------------------------------------------------------------------- typed sections


def test_choices_are_enums_that_yaml_and_overrides_give_as_text_in_any_case():
    from pipeline.config import DirectRunningMode, PullPolicy

    config = load_config(
        None,
        [
            "beam.direct_running_mode=MULTI_PROCESSING",
            "kubeflow.image_pull_policy=always",
            "features.company.vocabulary=Exact",
            "evaluator.slices=trip_start_hour",
        ],
    )
    assert config.beam.direct_running_mode is DirectRunningMode.MULTI_PROCESSING
    assert config.kubeflow.image_pull_policy is PullPolicy.ALWAYS
    assert config.features["company"].vocabulary == "exact"
    assert config.evaluator.slices == ("trip_start_hour",)  # one value where a list is wanted


def test_sections_are_immutable(taxi_config):
    with pytest.raises(ValueError, match="frozen"):
        taxi_config.trainer.train_steps = 5
    with pytest.raises(ValueError, match="frozen"):
        taxi_config.data = None


def test_the_monitor_reads_the_skew_checks_request_log_unless_told_otherwise(tmp_path):
    config = parse_config({**MINIMAL, "drift": {"serving_requests": "logs"}}, base=tmp_path)
    assert config.drift.serving_requests == config.monitor.requests == str(tmp_path / "logs")
    config = parse_config(
        {**MINIMAL, "drift": {"serving_requests": "logs"}, "monitor": {"requests": "other"}}, base=tmp_path
    )
    assert config.monitor.requests == str(tmp_path / "other")


@pytest.mark.parametrize(
    "raw, message",
    [
        (
            {"features": {"x": {"type": "numeric", "default": "zero"}}},
            "features.x.default: must be a number for a numeric feature, got 'zero'",
        ),
        ({"data": {"path": "d", "missing_values": ["", ["NA"]]}}, "data.missing_values[1]: expected a text value"),
        ({"data": 3}, "data: expected a mapping of options, got int 3"),
        (
            {"kubeflow": {"resources": {"Trainer": {"accelerator_count": "one"}}}},
            "kubeflow.resources.Trainer.accelerator_count: expected a number, got 'one'",
        ),
        ({"kubeflow": {"pvc": "p", "mount_path": "mnt"}}, "kubeflow.mount_path: must be an absolute path, got 'mnt'"),
        ({"trainer": {"hidden_units": []}}, "trainer.hidden_units: needs at least 1 value(s), got []"),
    ],
)
def test_each_sections_rules_name_the_key_path(raw, message):
    with pytest.raises(ConfigError) as err:
        parse_config({**MINIMAL, **raw})
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_missing_file_under_the_roots_own_directories_says_why(monkeypatch, tmp_path):
    from pipeline.config import not_visible_hint

    monkeypatch.setenv("TFXP_RUNTIME", "root")
    with pytest.raises(
        ConfigError,
        match=r"config file /etc/tfxp-none\.yaml does not exist \(commands run in the "
        r"runtime's Debian 13 root, whose /etc is its own",
    ):
        load_config("/etc/tfxp-none.yaml")
    assert not_visible_hint(tmp_path / "x.yaml") == ""  # the host's /tmp is bound: no such reason
    monkeypatch.delenv("TFXP_RUNTIME")
    assert not_visible_hint("/etc/x.yaml") == ""  # a plain virtual environment sees the host's /etc
