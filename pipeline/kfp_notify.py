"""The exit handler's task (pipeline/kfp_exit_handler.py): `python -m pipeline.kfp_notify
--executor_input JSON --pipeline NAME` reads KFP's PipelineTaskFinalStatus of the pipeline's body
and posts run_failed to the webhook in the step's environment (pipeline/notify.py ENV_URL) when
the body did not complete.

The status arrives as the input parameter `status`, a struct with the fields of KFP's
PipelineTaskFinalStatus (pipeline_spec.proto): state, pipelineJobResourceName, pipelineTaskName,
error {code, message}. KFP's backend (2.14+, backend/src/v2/driver/resolve.go) fills `state` with
the ML Metadata state of the body's execution (COMPLETE, CACHED, FAILED, RUNNING, CANCELED, ...)
and leaves `error` empty; Vertex AI and kfp.local use the task states (SUCCEEDED, FAILED,
CANCELLED, ...). A webhook that does not answer costs one stderr line and the task still ends 0:
the run's outcome is the body's, not the notification's.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Mapping

from pipeline.kfp_exit_handler import STATUS_INPUT

# The states of a body that completed: Vertex's and kfp.local's, and ML Metadata's that KFP's driver reports.
COMPLETED_STATES = ("SUCCEEDED", "COMPLETE", "CACHED")


class StatusError(ValueError):
    """The executor input holds no usable final status; the message says why."""


def final_status(executor_input: Mapping[str, Any]) -> dict[str, Any]:
    """The PipelineTaskFinalStatus in the executor input (a struct, or its JSON as a string)."""
    value = executor_input.get("inputs", {}).get("parameterValues", {}).get(STATUS_INPUT)
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as err:
            raise StatusError(f"the input parameter '{STATUS_INPUT}' is not JSON ({err})") from None
    if not isinstance(value, dict) or not value.get("state"):
        raise StatusError(
            f"the executor input has no input parameter '{STATUS_INPUT}' with a state; the exit task must take "
            "a taskFinalStatus (recompile with `tfxp compile`)"
        )
    return value


def handle(status: Mapping[str, Any], pipeline: str, environ: Mapping[str, str] = os.environ) -> bool:
    """Posts run_failed unless the body completed; True when a webhook took it."""
    from pipeline import notify

    state = str(status["state"])
    if state in COMPLETED_STATES:
        return False
    error = status.get("error") or {}
    message = str(error.get("message") or "")
    task = status.get("pipelineTaskName") or status.get("pipeline_task_name") or "the pipeline"
    run = status.get("pipelineJobResourceName") or status.get("pipeline_job_resource_name") or ""
    text = f"a Kubeflow run of {pipeline} failed: {task} ended {state}" + (f": {message}" if message else "")
    details = {"state": state, "task": task, "run": run, "error": message, "code": error.get("code")}
    details["pod"] = environ.get("KFP_POD_NAME", "")
    return notify.send(
        notify.from_environment(environ), notify.RUN_FAILED, text, details, {"pipeline": pipeline}, environ
    )


def main(argv: list[str] | None = None, environ: Mapping[str, str] = os.environ) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.kfp_notify")
    parser.add_argument("--executor_input", required=True, help="KFP's executor input ({{$}})")
    parser.add_argument("--pipeline", required=True, help="the pipeline's name, for the notification")
    args = parser.parse_args(argv)
    try:
        try:
            executor_input = json.loads(args.executor_input)
        except ValueError as err:
            raise StatusError(f"--executor_input is not JSON ({err})") from None
        status = final_status(executor_input)
    except (StatusError, AttributeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    handle(status, args.pipeline, environ)
    print(f"kfp_notify: the run's body ended {status['state']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
