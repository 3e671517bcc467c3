"""TFX artifact types whose Kubeflow V2 compiled type is one of KFP's system.* types.

TFX's compiler (tfx/orchestration/kubeflow/v2/compiler_utils.py `get_artifact_schema`) gives a
type outside its own list the generic Artifact schema with the type's TYPE_NAME as the schema's
title, when the name has the form <namespace>.<Title>. KFP's launcher records an output under
that title (backend/src/v2/metadata/client.go `SchemaToArtifactType`: the ML Metadata type is
the instance schema's title), and KFP's UI picks a run's visualisations by that type name
(frontend/src/components/viewers/MetricsVisualizations.tsx): system.HTML and system.Markdown
(the file at the artifact's URI), system.Metrics (every custom property but display_name, as
a table) and system.ClassificationMetrics (the confidenceMetrics and confusionMatrix custom
properties, as kfp's ClassificationMetrics.log_roc_curve and log_confusion_matrix write them).

TFX's own Kubeflow entrypoint imports a custom type by its schema title as a class path, which
"system.HTML" is not: pipeline/kfp_executor.py gives it the class path from `BY_TITLE`.
"""

from __future__ import annotations

from tfx.types import artifact


class HTML(artifact.Artifact):
    """A self-contained HTML page, the file at the artifact's URI on Kubeflow."""

    TYPE_NAME = "system.HTML"


class Markdown(artifact.Artifact):
    """A Markdown text, the file at the artifact's URI on Kubeflow."""

    TYPE_NAME = "system.Markdown"


class Metrics(artifact.Artifact):
    """Scalar metrics, as custom properties (no file)."""

    TYPE_NAME = "system.Metrics"


class ClassificationMetrics(artifact.Artifact):
    """A ROC curve (`confidenceMetrics`) and a confusion matrix (`confusionMatrix`), as custom properties."""

    TYPE_NAME = "system.ClassificationMetrics"


# KFP's type name -> the class's import path (what TFX's entrypoint imports).
BY_TITLE = {cls.TYPE_NAME: f"{__name__}.{cls.__name__}" for cls in (HTML, Markdown, Metrics, ClassificationMetrics)}
