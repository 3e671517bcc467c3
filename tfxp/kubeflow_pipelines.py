"""The pipeline on Kubeflow Pipelines (or Vertex AI): `compile`, `submit`."""

from __future__ import annotations

import os

from pipeline.config import ConfigError, PipelineConfig
from tfxp.commands import EXIT_FAILED, Commands

_LOCAL_IMAGE_HELP = (
    "accept an image that only this machine (or nodes it was loaded into with "
    "`kind load`) holds, e.g. localhost/...; for kfp.local and test clusters"
)


def register(commands: Commands) -> None:
    compile_ = commands.add("compile", _compile, "compile for Kubeflow Pipelines 2.x (.yaml) or Vertex AI (.json)")
    compile_.add_argument(
        "--output",
        "-o",
        help="pipeline.yaml (KFP PipelineSpec + Kubernetes platform spec) or "
        "job.json (Vertex AI PipelineJob); default build/pipeline.yaml "
        "(build/monitor.yaml with --monitor)",
    )
    compile_.add_argument("--allow-local-image", action="store_true", help=_LOCAL_IMAGE_HELP)
    compile_.add_argument(
        "--monitor",
        action="store_true",
        help="compile the one-step pipeline that runs tfxp monitor (for a recurring run)",
    )
    sub_ = commands.add("submit", _submit, "compile, upload to a KFP endpoint and start a run")
    sub_.add_argument("--package", help="submit this compiled pipeline instead of compiling the config")
    sub_.add_argument("--allow-local-image", action="store_true", help=_LOCAL_IMAGE_HELP)
    sub_.add_argument("--endpoint", help="KFP API URL (default: kubeflow.endpoint or KFP_ENDPOINT)")
    sub_.add_argument(
        "--namespace", help="profile namespace on multi-user KFP (default: kubeflow.namespace or KFP_NAMESPACE)"
    )
    sub_.add_argument("--experiment", help="experiment name, created if missing (default: kubeflow.experiment)")
    sub_.add_argument("--experiment-id", help="an existing experiment's id instead of a name")
    sub_.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help=f"a run parameter ({', '.join(('data_root', 'train_args', 'eval_args', 'eval_config'))}); "
        "the others come from the config and its --set overrides",
    )
    sub_.add_argument("--schedule", metavar="CRON", help="also create a recurring run, e.g. '0 0 3 * * *'")
    sub_.add_argument("--wait", action="store_true", help="wait for the run to finish and report its state")
    sub_.add_argument("--timeout", type=int, default=3600, help="seconds to wait with --wait (default 3600)")


def _compile(args, config: PipelineConfig) -> int:
    from pipeline import kubeflow_runner

    if args.monitor:
        from ops.monitoring.kubeflow import compile_monitor

        output = args.output or "build/monitor.yaml"
        if not output.endswith((".yaml", ".yml")):
            raise ConfigError(f"--output {output}: the monitor pipeline is compiled to a .yaml file")
        path = compile_monitor(config, output, allow_local_image=args.allow_local_image)
        print(f"compiled '{config.pipeline_name}-monitor' for image {config.kubeflow.image}: {os.path.abspath(path)}")
        return 0
    output = args.output or "build/pipeline.yaml"
    if not output.endswith((".yaml", ".yml", ".json")):
        raise ConfigError(
            f"--output {output}: use a .yaml file (Kubeflow Pipelines) or a .json file (Vertex AI PipelineJob)"
        )
    path = kubeflow_runner.compile_pipeline(config, output, allow_local_image=args.allow_local_image)
    print(f"compiled '{config.pipeline_name}' for image {config.kubeflow.image}: {os.path.abspath(path)}")
    return 0


def _submit(args, config: PipelineConfig) -> int:
    from pipeline import kubeflow_runner, submit

    if args.schedule:  # bad input, found before anything is compiled or sent
        try:
            submit.check_schedule(args.schedule)
        except submit.SubmitError as err:  # the user's input (exit 2), where a refused submission is not (1)
            raise ConfigError(str(err)) from None
    package = args.package or kubeflow_runner.compile_pipeline(
        config, "build/pipeline.yaml", allow_local_image=args.allow_local_image
    )
    pipeline_name, parameters = submit.run_parameters(config, package, args.param)
    kf = config.kubeflow
    result = submit.submit(
        package,
        pipeline_name=pipeline_name,
        endpoint=args.endpoint or os.environ.get("KFP_ENDPOINT") or kf.endpoint,
        namespace=args.namespace or os.environ.get("KFP_NAMESPACE") or kf.namespace,
        token=os.environ.get("KFP_TOKEN"),
        experiment=args.experiment or kf.experiment,
        experiment_id=args.experiment_id,
        parameters=parameters,
        pipeline_root=kf.pipeline_root,
        schedule=args.schedule,
        wait=args.wait,
        timeout=args.timeout,
    )
    print(
        f"pipeline {result.pipeline_id} version {result.version_id}; experiment {result.experiment_id}; "
        f"run {result.run_id}" + (f"; recurring run {result.recurring_run_id}" if result.recurring_run_id else "")
    )
    if result.state:
        print(f"run {result.run_id} finished: {result.state}")
        return 0 if result.state.upper() == "SUCCEEDED" else EXIT_FAILED
    return 0
