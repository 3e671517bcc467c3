"""tfxp report's sections from real TFDV protos (the whole page is rendered by the loop test)."""

from __future__ import annotations

import os

from ops.monitoring import report
from pipeline.config import load_config


def _statistics_artifact(tmp_path, serialized_examples):
    from components.drift_check import drift

    for split, part in (("train", serialized_examples[:60]), ("eval", serialized_examples[60:])):
        os.makedirs(tmp_path / f"Split-{split}")
        (tmp_path / f"Split-{split}" / "FeatureStats.pb").write_bytes(
            drift.statistics_of_examples(part).SerializeToString()
        )
    return str(tmp_path)


def test_statistics_per_split_offline_and_facets_only_when_asked(tmp_path, serialized_examples):
    uri = _statistics_artifact(tmp_path, serialized_examples)
    page = report._statistics_section([uri], facets=False)
    assert "split train</b>: 60 examples" in page and "split eval</b>: 20 examples" in page
    assert page.count("<svg ") >= 2 * 10  # a histogram per feature and split
    assert 'src="http' not in page and 'href="http' not in page and "<script" not in page
    assert "facets-overview" not in page
    online = report._statistics_section([uri], facets=True)
    assert "facets-overview" in online and "cdnjs" in online  # TFDV's view, from the network


def test_drift_rows_are_every_compared_feature_with_its_threshold(tmp_path, serialized_examples):
    import tensorflow_data_validation as tfdv

    from components.drift_check import drift

    current = drift.statistics_of_examples(serialized_examples[:40])
    previous = drift.statistics_of_examples(serialized_examples[40:])
    schema = drift.with_comparators(tfdv.infer_schema(current), ["fare", "company", "trip_miles"], 0.1, 0.2)
    found = drift.compare(current, previous, schema)
    os.makedirs(tmp_path / "Split-train")
    (tmp_path / "Split-train" / "SchemaDiff.pb").write_bytes(found.SerializeToString())
    page = report._drift_section([str(tmp_path)], load_config(None))
    rows = report._distance_rows(found)
    assert {r[0] for r in rows} == {"fare", "company", "trip_miles"}
    assert {r[0] for r in rows if r[5] == "above"} == set(found.anomaly_info)
    for feature, _, measure, value, threshold, _ in rows:
        assert f'<td>{feature}</td><td>drift</td><td>{measure}</td><td class="num">{value:.4g}</td>' in page
        assert f"{threshold:.4g}" in page


def test_columns_are_shown_by_their_csv_header(tmp_path, serialized_examples):
    import tensorflow_data_validation as tfdv

    from components.drift_check import drift

    headers = {"trip_miles": "trip miles", "fare": "fare (€)"}  # feature key -> CSV header
    uri = _statistics_artifact(tmp_path / "stats", serialized_examples)
    page = report._statistics_section([uri], facets=False, headers=headers)
    assert "<td>trip miles</td>" in page and "<td>fare (€)</td>" in page
    assert "<td>trip_miles</td>" not in page and "<td>company</td>" in page  # unmapped: the key
    current = drift.statistics_of_examples(serialized_examples[:40])
    previous = drift.statistics_of_examples(serialized_examples[40:])
    schema = drift.with_comparators(tfdv.infer_schema(current), ["fare", "company"], 0.1, 0.2)
    rows = report._distance_rows(drift.compare(current, previous, schema), headers=headers)
    assert {r[0] for r in rows} == {"fare (€)", "company"}


def test_roc_and_confusion_from_tfma_matrices():
    # TFMA's confusionMatrixAtThresholds entries leave zero counts out (JSON of a proto).
    matrices = [
        {"threshold": -1e-06, "truePositives": 4.0, "falsePositives": 6.0},
        {"threshold": 0.5, "truePositives": 3.0, "falsePositives": 1.0, "trueNegatives": 5.0, "falseNegatives": 1.0},
        {"threshold": 1.0, "trueNegatives": 6.0, "falseNegatives": 4.0},
    ]
    roc = report.roc_svg(matrices)
    assert roc.startswith('<svg class="roc"')
    assert roc.count(" L") == 2  # the path through (0, 0), (1/6, 3/4), (1, 1)
    confusion = report.confusion_svg(matrices)
    assert ">5</text>" in confusion and ">3</text>" in confusion and "threshold 0.50" in confusion


def test_an_evaluation_without_plots_has_no_matrices():
    # A regression evaluation computes no plot: TFMA gives None for the slice's plots.
    assert report._matrices({(): None}.get(())) == []
    assert report._matrices({"": None}) == []
