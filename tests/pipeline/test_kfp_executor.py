"""The step entrypoint under the KFP 2.x launcher's contract (pipeline/kfp_executor.py).

The executor inputs here have the shape KFP 2.5's driver gives them (driver.go `provisionOutputs`,
metadata/client.go `GetOutputArtifactsByExecutionId`): remote output URIs below the pipeline
root, an executor-logs output of type system.Artifact, and upstream artifacts whose
instanceSchema is empty.
"""

from __future__ import annotations

import json
import os

import pytest

from pipeline import kfp_executor

EXAMPLES_SCHEMA = "title: tfx.Examples\ntype: object\n"
ROOT = "minio://mlpipeline/v2/artifacts/taxi/run-1"


def _driver_input() -> dict:
    return {
        "inputs": {
            "artifacts": {
                "examples": {
                    "artifacts": [
                        {
                            "name": "17",
                            "uri": f"{ROOT}/ExampleGen/u1/examples",
                            "type": {"instanceSchema": ""},
                            "metadata": {"span": 3.0, "split_names": '["train"]', "display_name": "examples"},
                        }
                    ]
                }
            },
            "parameterValues": {"exclude_splits": "[]"},
        },
        "outputs": {
            "artifacts": {
                "statistics": {
                    "artifacts": [
                        {
                            "uri": f"{ROOT}/StatisticsGen/u2/statistics",
                            "type": {"instanceSchema": "title: tfx.ExampleStatistics\n"},
                        }
                    ]
                },
                "executor-logs": {
                    "artifacts": [
                        {"uri": f"{ROOT}/StatisticsGen/u2/executor-logs", "type": {"schemaTitle": "system.Artifact"}}
                    ]
                },
            },
            "outputFile": "/tmp/kfp_outputs/output_metadata.json",
        },
    }


COPY_EXECUTOR = "tests.pipeline.copy_executor.Executor"
INPUTS_SPEC = {"artifacts": {"examples": {"artifactType": {"instanceSchema": EXAMPLES_SCHEMA}}}}


def test_local_paths_are_the_launchers():
    assert kfp_executor.local_path_for_uri("minio://mlpipeline/v2/a/b") == "/minio/mlpipeline/v2/a/b"
    assert kfp_executor.local_path_for_uri("s3://bucket/x") == "/s3/bucket/x"
    assert kfp_executor.local_path_for_uri("gs://bucket/x") == "/gcs/bucket/x"
    assert kfp_executor.local_path_for_uri("/mnt/pipeline/x") is None


def test_under_the_launcher_every_artifact_goes_through_its_local_path(monkeypatch, tmp_path):
    monkeypatch.setattr(kfp_executor, "LOCAL_MOUNTS", (("minio://", f"{tmp_path}/minio/"),))
    prepared, local_to_remote, left_out = kfp_executor.prepare(_driver_input(), INPUTS_SPEC, launcher=True)
    [examples] = prepared["inputs"]["artifacts"]["examples"]["artifacts"]
    [statistics] = prepared["outputs"]["artifacts"]["statistics"]["artifacts"]
    assert examples["uri"] == f"{tmp_path}/minio/mlpipeline/v2/artifacts/taxi/run-1/ExampleGen/u1/examples"
    assert statistics["uri"].startswith(f"{tmp_path}/minio/")
    assert local_to_remote[statistics["uri"]] == f"{ROOT}/StatisticsGen/u2/statistics"
    # the launcher creates the parent, not the artifact's directory: an empty output is no output
    assert os.path.isdir(os.path.dirname(statistics["uri"])) and not os.path.exists(statistics["uri"])
    assert left_out == ["executor-logs"]
    assert "executor-logs" not in prepared["outputs"]["artifacts"]


def _gs_input() -> dict:
    return json.loads(json.dumps(_driver_input()).replace("minio://", "gs://"))


def test_untyped_inputs_get_the_type_of_the_inputs_spec():
    prepared, _, _ = kfp_executor.prepare(_gs_input(), INPUTS_SPEC, launcher=False)
    [examples] = prepared["inputs"]["artifacts"]["examples"]["artifacts"]
    assert kfp_executor.type_title(examples["type"]) == "tfx.Examples"
    assert examples["metadata"]["span"] == 3.0  # metadata is left as ML Metadata gave it


def test_kfp_local_system_artifact_inputs_get_the_type_too():
    executor_input = _gs_input()
    executor_input["inputs"]["artifacts"]["examples"]["artifacts"][0]["type"] = {"schemaTitle": "system.Artifact"}
    prepared, _, _ = kfp_executor.prepare(executor_input, INPUTS_SPEC, launcher=False)
    [examples] = prepared["inputs"]["artifacts"]["examples"]["artifacts"]
    assert kfp_executor.type_title(examples["type"]) == "tfx.Examples"


def test_an_untyped_input_the_spec_does_not_declare_is_an_error():
    with pytest.raises(kfp_executor.ContractError, match="input artifact 'examples' came without a type"):
        kfp_executor.prepare(_driver_input(), {"artifacts": {}}, launcher=False)


def test_minio_outside_the_launcher_is_an_error_not_a_tensorflow_trace():
    with pytest.raises(kfp_executor.ContractError, match="TensorFlow cannot open"):
        kfp_executor.prepare(_driver_input(), INPUTS_SPEC, launcher=False)


def test_gs_outside_the_launcher_is_left_to_tensorflow():
    prepared, local_to_remote, _ = kfp_executor.prepare(_gs_input(), INPUTS_SPEC, launcher=False)
    assert local_to_remote == {}
    assert prepared["outputs"]["artifacts"]["statistics"]["artifacts"][0]["uri"].startswith("gs://")


def test_restore_names_the_remote_uris_again():
    local_to_remote = {
        "/minio/b/Trainer/u/model": "minio://b/Trainer/u/model",
        "/minio/b/Trainer/u/model_run": "minio://b/Trainer/u/model_run",
    }
    output = {
        "artifacts": {
            "model": {
                "artifacts": [
                    {
                        "uri": "/minio/b/Trainer/u/model",
                        "metadata": {"dir": "/minio/b/Trainer/u/model/x", "n": 1.0, "other": "/mnt/pipeline/x"},
                    }
                ]
            },
            "model_run": {"artifacts": [{"uri": "/minio/b/Trainer/u/model_run"}]},
        }
    }
    restored = kfp_executor.restore(output, local_to_remote)
    assert restored["artifacts"]["model"]["artifacts"][0]["uri"] == "minio://b/Trainer/u/model"
    assert restored["artifacts"]["model"]["artifacts"][0]["metadata"] == {
        "dir": "minio://b/Trainer/u/model/x",
        "n": 1.0,
        "other": "/mnt/pipeline/x",
    }
    assert restored["artifacts"]["model_run"]["artifacts"][0]["uri"] == "minio://b/Trainer/u/model_run"


def test_tfx_runs_a_step_through_the_local_paths(monkeypatch, tmp_path):
    """The real TFX entrypoint on a tiny executor: reads its input's local copy, writes its output's."""
    monkeypatch.setattr(kfp_executor, "LOCAL_MOUNTS", (("minio://", f"{tmp_path}/minio/"),))
    executor_input = _driver_input()
    executor_input["outputs"]["outputFile"] = str(tmp_path / "kfp_outputs" / "output_metadata.json")
    downloaded = tmp_path / "minio/mlpipeline/v2/artifacts/taxi/run-1/ExampleGen/u1/examples/Split-train"
    downloaded.mkdir(parents=True)
    (downloaded / "data.gz").write_bytes(b"rows")
    kfp_executor.run(
        [
            "--executor_class_path",
            "tests.pipeline.copy_executor.Executor",
            "--json_serialized_invocation_args",
            json.dumps(executor_input),
            "--json_serialized_inputs_spec_args",
            json.dumps(INPUTS_SPEC),
        ],
        environ={"KFP_POD_NAME": "pod"},
    )
    uploaded = tmp_path / "minio/mlpipeline/v2/artifacts/taxi/run-1/StatisticsGen/u2/statistics"
    assert (uploaded / "Split-train" / "data.gz").read_bytes() == b"rows"
    output = json.loads((tmp_path / "kfp_outputs" / "output_metadata.json").read_text())
    [statistics] = output["artifacts"]["statistics"]["artifacts"]
    assert statistics["uri"] == f"{ROOT}/StatisticsGen/u2/statistics"
    assert statistics["metadata"]["source"] == f"{ROOT}/ExampleGen/u1/examples"
    assert "executor-logs" not in output["artifacts"]


def test_the_module_refuses_a_contract_it_cannot_run_with_one_line(tmp_path):
    import subprocess
    import sys

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline.kfp_executor",
            "--executor_class_path",
            COPY_EXECUTOR,
            "--json_serialized_invocation_args",
            json.dumps(_driver_input()),
            "--json_serialized_inputs_spec_args",
            json.dumps(INPUTS_SPEC),
        ],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "KFP_POD_NAME"},
    )
    assert result.returncode == 2, result.stderr
    [line] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert "TensorFlow cannot open" in line


def test_the_module_runs_a_step_as_kfp_local_hands_it_over(tmp_path):
    """`python -m pipeline.kfp_executor` end to end (absl's app.run included) on local paths."""
    import subprocess
    import sys

    executor_input = json.loads(json.dumps(_driver_input()).replace(ROOT, str(tmp_path / "root")))
    executor_input["outputs"]["outputFile"] = str(tmp_path / "out" / "output_metadata.json")
    split = tmp_path / "root" / "ExampleGen" / "u1" / "examples" / "Split-train"
    split.mkdir(parents=True)
    (split / "data.gz").write_bytes(b"rows")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline.kfp_executor",
            "--executor_class_path",
            COPY_EXECUTOR,
            "--json_serialized_invocation_args",
            json.dumps(executor_input),
            "--json_serialized_inputs_spec_args",
            json.dumps(INPUTS_SPEC),
        ],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "KFP_POD_NAME"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "root" / "StatisticsGen" / "u2" / "statistics" / "Split-train" / "data.gz").is_file()
    output = json.loads((tmp_path / "out" / "output_metadata.json").read_text())
    [statistics] = output["artifacts"]["statistics"]["artifacts"]
    assert statistics["uri"] == str(tmp_path / "root/StatisticsGen/u2/statistics")


def test_with_a_beam_cluster_the_artifacts_go_through_the_shared_pvc(monkeypatch, tmp_path):
    """beam.flink_on_kubernetes: TFX (and so the Flink workers) read and write the artifacts on
    the PVC, never the launcher's local paths that exist in this pod only; the launcher still
    finds the outputs at its paths, and the PVC keeps no copies."""
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_run_executor

    monkeypatch.setattr(kfp_executor, "LOCAL_MOUNTS", (("minio://", f"{tmp_path}/minio/"),))
    seen: list[dict] = []
    real_main = kubeflow_v2_run_executor.main

    def spy(args):
        seen.append(json.loads(args[0].json_serialized_invocation_args))
        assert "--tfxp_beam_exchange_dir" not in " ".join(args[1])
        return real_main(args)

    monkeypatch.setattr(kubeflow_v2_run_executor, "main", spy)
    executor_input = _driver_input()
    executor_input["outputs"]["outputFile"] = str(tmp_path / "kfp_outputs" / "output_metadata.json")
    downloaded = tmp_path / "minio/mlpipeline/v2/artifacts/taxi/run-1/ExampleGen/u1/examples/Split-train"
    downloaded.mkdir(parents=True)
    (downloaded / "data.gz").write_bytes(b"rows")
    exchange = tmp_path / "pvc" / "beam-exchange"
    kfp_executor.run(
        [
            "--executor_class_path",
            COPY_EXECUTOR,
            "--json_serialized_invocation_args",
            json.dumps(executor_input),
            "--json_serialized_inputs_spec_args",
            json.dumps(INPUTS_SPEC),
            "--runner=FlinkRunner",
            f"--tfxp_beam_exchange_dir={exchange}",
        ],
        environ={"KFP_POD_NAME": "pod"},
    )
    [invocation] = seen
    [examples] = invocation["inputs"]["artifacts"]["examples"]["artifacts"]
    [statistics] = invocation["outputs"]["artifacts"]["statistics"]["artifacts"]
    assert examples["uri"] == f"{exchange}{tmp_path}/minio/mlpipeline/v2/artifacts/taxi/run-1/ExampleGen/u1/examples"
    assert statistics["uri"].startswith(f"{exchange}{tmp_path}/minio/")
    uploaded = tmp_path / "minio/mlpipeline/v2/artifacts/taxi/run-1/StatisticsGen/u2/statistics"
    assert (uploaded / "Split-train" / "data.gz").read_bytes() == b"rows"
    assert [p for p in exchange.rglob("*") if p.is_file()] == []
    output = json.loads((tmp_path / "kfp_outputs" / "output_metadata.json").read_text())
    [written] = output["artifacts"]["statistics"]["artifacts"]
    assert written["uri"] == f"{ROOT}/StatisticsGen/u2/statistics"
    assert written["metadata"]["source"] == f"{ROOT}/ExampleGen/u1/examples"


@pytest.mark.parametrize("uri", ["minio://mlpipeline/v2/artifacts/x", "s3://bucket/x"])
def test_why_the_cluster_gets_pvc_paths_not_the_remote_uris(uri):
    """TFX's executors write artifacts with tf.io.gfile, which opens neither the default install's
    minio:// nor s3:// (TensorFlow 2.21 has no S3 file system); the exchange paths are local
    paths, which Beam's file systems (on the Flink workers) resolve to its local file system."""
    import tensorflow as tf
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.io.localfilesystem import LocalFileSystem

    with pytest.raises(tf.errors.UnimplementedError, match="not implemented"):
        tf.io.gfile.exists(uri)
    exchange_path = "/mnt/pipeline/beam-exchange" + kfp_executor.local_path_for_uri(uri.replace("s3://", "minio://"))
    assert isinstance(FileSystems.get_filesystem(exchange_path), LocalFileSystem)


def test_run_page_outputs_get_the_class_path_tfx_imports_and_keep_their_place(monkeypatch, tmp_path):
    # prepare() makes the outputs' parent directories: under the real /minio they would land in
    # the runtime root, from which the image is built
    monkeypatch.setattr(kfp_executor, "LOCAL_MOUNTS", (("minio://", f"{tmp_path}/minio/"),))
    from tfx.orchestration.kubeflow.v2 import compiler_utils
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_entrypoint_utils

    from components.run_page import artifacts

    executor_input = _driver_input()
    executor_input["outputs"]["artifacts"]["report"] = {
        "artifacts": [
            {
                "uri": f"{ROOT}/RunPage/u3/report",
                "type": {"instanceSchema": compiler_utils.get_artifact_schema(artifacts.HTML)},
            }
        ]
    }
    prepared, local_to_remote, left_out = kfp_executor.prepare(executor_input, INPUTS_SPEC, launcher=True)
    assert "report" not in left_out  # TFX writes it, not the launcher
    [report] = prepared["outputs"]["artifacts"]["report"]["artifacts"]
    assert report["uri"] == f"{tmp_path}/minio/mlpipeline/v2/artifacts/taxi/run-1/RunPage/u3/report"
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2

    message = json_format.ParseDict({"outputs": prepared["outputs"]}, pipeline_spec_pb2.ExecutorInput())
    [tfx_artifact] = kubeflow_v2_entrypoint_utils.parse_raw_artifact_dict(message.outputs.artifacts, {})["report"]
    assert isinstance(tfx_artifact, artifacts.HTML) and tfx_artifact.type_name == "system.HTML"
