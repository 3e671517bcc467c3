"""Evaluator: TFX's Evaluator that skips an empty baseline (nothing served yet)."""

from components.evaluator.component import Evaluator

__all__ = ["Evaluator"]
