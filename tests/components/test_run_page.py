"""The Kubeflow run page (components/run_page): its artifacts' types compile to KFP's system.*
types, its metrics take kfp's own shapes (checked against kfp's ClassificationMetrics), and its
text artifacts are the object at the URI under KFP's launcher, a file inside the directory
TFX's local launcher makes."""

from __future__ import annotations

import json

import pytest
import yaml

from components.run_page import artifacts, content

# TFMA's binary confusion matrices at three thresholds (the ConfusionMatrixPlot's shape).
MATRICES = [
    {"threshold": 0.0, "truePositives": 4.0, "falsePositives": 6.0, "trueNegatives": 0.0, "falseNegatives": 0.0},
    {"threshold": 0.5, "truePositives": 3.0, "falsePositives": 1.0, "trueNegatives": 5.0, "falseNegatives": 1.0},
    {"threshold": 1.0, "truePositives": 0.0, "falsePositives": 0.0, "trueNegatives": 6.0, "falseNegatives": 4.0},
]
PLOTS = {"": {"": {"confusionMatrixAtThresholds": {"matrices": MATRICES}}}}


@pytest.mark.parametrize(
    "cls", [artifacts.HTML, artifacts.Markdown, artifacts.Metrics, artifacts.ClassificationMetrics]
)
def test_tfxs_compiler_titles_each_type_with_kfps_name(cls):
    from tfx.orchestration.kubeflow.v2 import compiler_utils
    from tfx.utils import import_utils

    schema = yaml.safe_load(compiler_utils.get_artifact_schema(cls))
    assert schema["title"] == cls.TYPE_NAME and cls.TYPE_NAME.startswith("system.")
    assert import_utils.import_class_by_path(artifacts.BY_TITLE[cls.TYPE_NAME]) is cls


def test_the_roc_curve_and_confusion_matrix_are_kfps_own_shapes():
    from kfp import dsl

    found = content.classification("binary", PLOTS, ["small tip", "big tip"])
    expected = dsl.ClassificationMetrics(name="m", uri="/tmp/m")
    expected.log_roc_curve([1.0, 1 / 6, 0.0], [1.0, 0.75, 0.0], [0.0, 0.5, 1.0])
    expected.log_confusion_matrix(["small tip", "big tip"], [[5, 1], [1, 3]])
    assert json.loads(json.dumps(found)) == expected.metadata


def test_a_multiclass_evaluation_gives_its_confusion_matrix_by_class_name_and_no_roc():
    entries = [
        {"actualClassId": 0, "predictedClassId": 0, "numWeightedExamples": 7.0},
        {"actualClassId": 0, "predictedClassId": 2, "numWeightedExamples": 1.0},
        {"actualClassId": 2, "predictedClassId": 1, "numWeightedExamples": 2.0},
        {"actualClassId": 1, "predictedClassId": -1, "numWeightedExamples": 3.0},  # no prediction
    ]
    plots = {"": {"": {"multiClassConfusionMatrixAtThresholds": {"matrices": [{"entries": entries}]}}}}
    found = content.classification("multiclass", plots, ["cash", "card", "other"])
    assert found == {
        "confusionMatrix": {
            "annotationSpecs": [{"displayName": "cash"}, {"displayName": "card"}, {"displayName": "other"}],
            "rows": [{"row": [7, 0, 1]}, {"row": [0, 0, 0]}, {"row": [0, 2, 0]}],
        }
    }
    assert content.classification("regression", PLOTS, []) == {}
    assert content.classification("binary", None, []) == {}  # an evaluation without plots


def test_scalar_metrics_leave_out_what_json_cannot_hold():
    assert content.scalar_metrics({"auc": 0.8, "precision": float("nan"), "example_count": 6.0}) == {
        "auc": 0.8,
        "example_count": 6.0,
    }


def test_text_goes_at_the_uri_under_kfp_and_inside_the_directory_locally(tmp_path):
    kfp_uri = str(tmp_path / "minio" / "RunPage" / "report")  # the launcher makes no output directory
    assert content.content_path(kfp_uri, "report.html") == kfp_uri
    (tmp_path / "local").mkdir()  # TFX's local launcher made it
    assert content.content_path(str(tmp_path / "local"), "report.html") == str(tmp_path / "local" / "report.html")


def test_the_page_and_the_markdown_say_what_the_run_did():
    refused = {"blessed": False, "pushed": 0, "pushed_version": None}
    failures = ["auc = 0.5 is below the threshold 0.7: evaluator.min_auc"]
    page = content.page_html("taxi: run", refused, {"auc": 0.5}, {"auc": 0.9}, failures, "binary", PLOTS, None)
    assert "refused by the Evaluator: nothing pushed" in page and "evaluator.min_auc" in page
    assert 'aria-label="ROC curve"' in page and "served (baseline)" in page
    assert "No model card: no version was pushed" in page
    markdown = content.card_markdown(refused, None, {"auc": 0.5}, failures)
    assert markdown.startswith("# No model card\n") and "| auc | 0.5 |" in markdown
    pushed = {"blessed": True, "pushed": 1, "pushed_version": "7", "pushed_destination": "/srv/taxi/7"}
    assert content.card_markdown(pushed, "# Model card: taxi, version 7\n", {}, []) == "# Model card: taxi, version 7\n"
    page = content.page_html("t", pushed, {}, None, [], "regression", None, "<p>card's 'page'</p>")
    assert "pushed as version 7 (/srv/taxi/7)" in page and "srcdoc='&lt;p&gt;card&#x27;s &#x27;page&#x27;" in page


def test_the_pushers_and_evaluators_properties_read_as_kubeflow_hands_them_over():
    """On Kubeflow the inputs' properties arrive as ML Metadata's doubles, which TFX's entrypoint
    makes structs: a refused model's `blessed: 0.0` must read as 0, not as a (true) message."""
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2
    from tfx.orchestration.kubeflow.v2 import compiler_utils
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_entrypoint_utils
    from tfx.types import standard_artifacts

    from components.run_page.executor import property_value

    schema = compiler_utils.get_artifact_schema(standard_artifacts.ModelBlessing).decode()  # TFX's file, as bytes
    runtime = {"uri": "/minio/b", "type": {"instanceSchema": schema}, "metadata": {"blessed": 0.0, "name": "b"}}
    message = json_format.ParseDict(
        {"inputs": {"artifacts": {"blessing": {"artifacts": [runtime]}}}}, pipeline_spec_pb2.ExecutorInput()
    )
    [blessing] = kubeflow_v2_entrypoint_utils.parse_raw_artifact_dict(message.inputs.artifacts, {})["blessing"]
    assert property_value(blessing, "blessed") == 0.0 and property_value(blessing, "name") == "b"
    assert property_value(blessing, "absent") is None
    local = standard_artifacts.PushedModel()
    local.set_int_custom_property("pushed", 0)  # as TFX's local launcher hands it over
    assert property_value(local, "pushed") == 0


def test_a_run_that_pushed_nothing_records_why_as_tfxp_run_decides_it():
    """The rule of tfxp/local_runs.py (neither pushed nor already served), which
    pipeline/kfp_executor.py turns into run_refused on Kubeflow."""
    from components.run_page.executor import refused_reasons

    failures = ["auc = 0.61 below the threshold 0.7: evaluator.min_auc"]
    assert refused_reasons({"pushed": 0, "already_served": None, "blessed": False}, failures) == failures
    assert refused_reasons({"pushed": 0, "blessed": False}, []) == ["refused by the Evaluator: nothing pushed"]
    assert refused_reasons({"pushed": 0, "blessed": True}, []) == [
        "not pushed (the serving checks or the Pusher did not push it)"
    ]
    assert refused_reasons({"pushed": 1, "pushed_version": "7", "blessed": True}, []) is None
    assert refused_reasons({"pushed": 0, "already_served": "/serving/taxi/7", "blessed": True}, []) is None
