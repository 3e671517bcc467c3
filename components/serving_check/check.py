"""The serving check's logic as plain functions: load a candidate the way TF Serving loads it
and run every signature through TF Serving's request handling, before anything is pushed.

TF Serving loads a version by importing its graph into a TF1 session, restoring the
variables, running the init op and then replaying `assets.extra/tf_serving_warmup_requests`;
a failure at any step leaves the version unavailable. The check takes the same steps
(`loader.SessionModel`, `tf_serving_requests.replay_warmup`), and refuses a model whose warm-up
records do not run every signature: a signature never run before the push is one nobody checked.

Plain TensorFlow and tensorflow-serving-api only: it also runs under the TensorFlow of the
serving image, in a side environment (`python -m components.serving_check.check DIR`).
"""

from __future__ import annotations

import dataclasses
import sys

from components.serving_check import loader, tf_serving_requests
from components.serving_warmup import warmup
from contracts.saved_model import ASSETS_EXTRA, WARMUP_FILE


class ServingCheckFailed(RuntimeError):
    """The candidate would not load or answer in TF Serving; the message is one line."""


@dataclasses.dataclass(frozen=True)
class CheckResult:
    records: int
    signatures: tuple[str, ...]


def check(saved_model_dir: str) -> CheckResult:
    """Loads `saved_model_dir` on TF Serving's path and replays its warm-up records.

    Raises ServingCheckFailed naming the step, the signature and TF Serving's error.
    """
    logs = warmup.read_warmup(saved_model_dir)
    if not logs:
        raise ServingCheckFailed(
            f"{saved_model_dir} has no {ASSETS_EXTRA}/{WARMUP_FILE}: no signature would run before the first request"
        )
    try:
        model = loader.SessionModel(saved_model_dir)
    except loader.LoadError as err:
        raise ServingCheckFailed(f"the model does not load as TF Serving loads it: {err}") from None
    with model:
        signatures = sorted(key for key in model.signature_defs if not key.startswith("__"))
        unrun = sorted(set(signatures) - {warmup.logged_signature(log) for log in logs})
        if unrun:
            raise ServingCheckFailed(
                f"signature(s) {', '.join(unrun)} have no warm-up record, so nothing ran them before the push"
            )
        try:
            records = tf_serving_requests.replay_warmup(model, saved_model_dir)
        except tf_serving_requests.ServingError as err:
            raise ServingCheckFailed(str(err)) from None
    return CheckResult(records=records, signatures=tuple(signatures))


def main(argv: list[str] | None = None) -> int:
    """`python -m components.serving_check.check DIR...`: one line per model, exit 1 on a failure."""
    import tensorflow as tf

    dirs = sys.argv[1:] if argv is None else argv
    if not dirs:
        print("usage: python -m components.serving_check.check SAVED_MODEL_DIR...", file=sys.stderr)
        return 2
    failed = 0
    for path in dirs:
        try:
            result = check(path)
        except ServingCheckFailed as err:
            failed += 1
            print(f"REFUSED {path} (TensorFlow {tf.__version__}): {err}")
            continue
        print(
            f"OK {path} (TensorFlow {tf.__version__}): {result.records} warm-up records ran "
            f"signatures {', '.join(result.signatures)}"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
