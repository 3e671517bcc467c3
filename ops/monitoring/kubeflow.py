"""`tfxp monitor` as a Kubeflow Pipelines pipeline of one step, for a recurring run.

`tfxp compile --monitor` writes it; `tfxp submit --package build/monitor.yaml --schedule CRON`
uploads it and schedules it like the training pipeline. The step runs the pipeline's image
with the PVC the training pipeline writes, so it reads the same serving directory, request log
and feedback. A crossed threshold (exit 1) or an empty window (exit 3) fails the run, which is
how KFP shows it.
"""

# No `from __future__ import annotations`: the KFP SDK reads the components' annotations as types.

import os

from pipeline.config import PipelineConfig


def monitor_args(config: PipelineConfig) -> list[str]:
    """The `--set` overrides that point tfxp monitor at the cluster's paths."""
    kf, mon = config.kubeflow, config.monitor
    # The Pusher writes <serving_root>/<model>; tfxp reads <output_dir>/serving/<model>.
    output_dir = os.path.dirname(kf.serving_root.rstrip("/"))
    # Where kubernetes/serving's request-log sidecar writes, unless the config names a path there.
    requests = (
        mon.requests
        if mon.requests and mon.requests.startswith(kf.mount_path)
        else f"{kf.mount_path.rstrip('/')}/requests/{config.model_name}"
    )
    sets = [f"output_dir={output_dir}", f"monitor.requests={requests}"]
    if mon.serving_url:
        sets.append(f"monitor.serving_url={mon.serving_url}")
    return [a for s in sets for a in ("--set", s)]


def compile_monitor(config: PipelineConfig, output_path: str, allow_local_image: bool = False) -> str:
    """Compiles the one-step monitor pipeline (KFP 2.x YAML, with the PVC in its platform spec)."""
    from kfp import compiler, dsl, kubernetes

    from pipeline.kubeflow_runner import check_image

    if not allow_local_image:
        check_image(config)  # the same refusal as the training pipeline's
    kf = config.kubeflow
    args = monitor_args(config)

    @dsl.container_component
    def tfxp_monitor(window: str):
        return dsl.ContainerSpec(image=kf.image, command=["tfxp", "monitor"], args=["--window", window, *args])

    @dsl.pipeline(
        name=f"{config.pipeline_name}-monitor", description=f"tfxp monitor on the served '{config.model_name}' model"
    )
    def monitor_pipeline(window: str = config.monitor.window):
        task = tfxp_monitor(window=window)
        task.set_caching_options(False)  # every run measures the traffic of its own window
        resources = kf.resources.get("default")
        if resources and resources.cpu_limit:
            task.set_cpu_limit(resources.cpu_limit)
        if resources and resources.memory_limit:
            task.set_memory_limit(resources.memory_limit)
        if kf.image_pull_policy:
            kubernetes.set_image_pull_policy(task, kf.image_pull_policy)
        if kf.pvc:
            kubernetes.mount_pvc(task, pvc_name=kf.pvc, mount_path=kf.mount_path)

    os.makedirs(os.path.dirname(os.path.abspath(output_path)), exist_ok=True)
    compiler.Compiler().compile(monitor_pipeline, output_path)
    return output_path
