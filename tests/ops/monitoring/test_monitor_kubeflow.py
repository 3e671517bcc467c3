"""tfxp monitor on Kubeflow: the one-step pipeline, and its recurring run through tfxp submit."""

from __future__ import annotations

import yaml

from pipeline.config import KubeflowConfig, load_config
from tfxp.main import main


def test_the_monitor_pipeline_runs_tfxp_monitor_on_the_pipelines_volume(tmp_path, capsys):
    out = tmp_path / "monitor.yaml"
    assert main(["compile", "--monitor", "-o", str(out)]) == 2  # localhost/: no cluster can pull it
    assert "so a cluster cannot pull it" in capsys.readouterr().err
    assert (
        main(
            [
                "compile",
                "--monitor",
                "--allow-local-image",
                "-o",
                str(out),
                "--set",
                "monitor.serving_url=http://tf-serving:8501",
            ]
        )
        == 0
    )
    spec, platform = yaml.safe_load_all(out.read_text())
    [container] = [e["container"] for e in spec["deploymentSpec"]["executors"].values()]
    kf = KubeflowConfig()
    assert container["image"] == kf.image and container["command"] == ["tfxp", "monitor"]
    args = container["args"]
    assert args[:2] == ["--window", "{{$.inputs.parameters['window']}}"]
    overrides = [args[i + 1] for i, a in enumerate(args) if a == "--set"]
    config = load_config(None, overrides)
    assert config.serving_dir == kf.serving_dir(config.model_name)  # what the compiled Pusher writes
    assert config.monitor.requests == f"{kf.mount_path}/requests/{config.model_name}"  # the sidecar's --log-dir
    assert config.monitor.serving_url == "http://tf-serving:8501"
    assert spec["root"]["inputDefinitions"]["parameters"]["window"]["defaultValue"] == "24h"
    [executor] = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"].values()
    assert [(m["constant"], m["mountPath"]) for m in executor["pvcMount"]] == [(kf.pvc, kf.mount_path)]
    assert executor["imagePullPolicy"] == kf.image_pull_policy


def test_a_recurring_monitor_run_gets_only_its_own_parameters(kfp_api, tmp_path, capsys):  # noqa: F811
    package = tmp_path / "monitor.yaml"
    assert main(["compile", "--monitor", "--allow-local-image", "-o", str(package)]) == 0
    code = main(
        [
            "submit",
            "--package",
            str(package),
            "--endpoint",
            kfp_api.endpoint,
            "--param",
            "window=2h",
            "--schedule",
            "0 17 * * * *",
        ]
    )
    assert code == 0, capsys.readouterr().err
    [run] = kfp_api.runs.values()
    assert run["runtime_config"]["parameters"] == {"window": "2h"}
    [pipeline] = kfp_api.pipelines.values()
    assert pipeline["display_name"] == "taxi-big-tipper-monitor"
    [(_, _, _, body)] = kfp_api.calls("POST", "/recurringruns")
    assert b"0 17 * * * *" in body
    assert main(["submit", "--package", str(package), "--endpoint", kfp_api.endpoint, "--param", "data_root=/x"]) == 2
    assert "expected NAME=VALUE with NAME one of window" in capsys.readouterr().err
