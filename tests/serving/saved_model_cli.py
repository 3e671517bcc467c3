"""TensorFlow's own `saved_model_cli run`: the TF1 session loader TF Serving's C++ loader mirrors."""

from __future__ import annotations

import json
import subprocess

from components.serving_warmup import warmup


def saved_model_cli(model_dir, signature: str, inputs: str):
    return subprocess.run(
        [
            "saved_model_cli",
            "run",
            "--dir",
            str(model_dir),
            "--tag_set",
            "serve",
            "--signature_def",
            signature,
            *inputs.split(" ", 1),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )


def cli_inputs(model_dir, signature: str) -> str:
    """saved_model_cli arguments for one row of the tiny sample (labels left out)."""
    row = {
        "fare": [6.5],
        "trip_miles": [1.2],
        "company": ["Taxi Affiliation Services"],
        "payment_type": ["Cash"],
        "trip_start_hour": [3],
        "trip_start_timestamp": [1400269500],
    }
    if signature == "serve_raw":
        defs = warmup.signature_defs(str(model_dir))[signature]
        values = {name: (["x"] if spec.dtype == 7 else [0]) for name, spec in defs.inputs.items()}
        values.update({k: v for k, v in row.items() if k in values})
        return "--input_exprs " + ";".join(f"{k}={json.dumps(v)}" for k, v in values.items())
    alias = "inputs" if signature in ("classify", "regress") else "examples"
    return f"--input_examples {alias}={json.dumps([row])}"
