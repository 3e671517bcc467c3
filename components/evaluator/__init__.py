"""Evaluator: TFX's Evaluator that skips an empty baseline (nothing served yet), drops the change
thresholds then, and adds first-run gates from the data (gates.py).

The component class is imported on first use, so the readers of its results (results.py, which
`tfxp runs` and the model card use) import without TFX.
"""


def __getattr__(name: str):
    if name == "Evaluator":
        from components.evaluator.component import Evaluator

        return Evaluator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Evaluator"]
