"""The Kubeflow run page: the run's outcome, its model card and its test metrics as KFP v2's
system.HTML, system.Markdown, system.Metrics and system.ClassificationMetrics artifacts, which
the KFP UI shows on the run's page (component.py)."""

from components.run_page.component import RunPage

__all__ = ["RunPage"]
