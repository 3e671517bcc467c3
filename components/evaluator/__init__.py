"""Evaluator: TFX's Evaluator that skips an empty baseline (nothing served yet), drops the change
thresholds then, and adds first-run gates from the data (gates.py)."""

from components.evaluator.component import Evaluator

__all__ = ["Evaluator"]
