"""`submit` against a local HTTP server that answers the KFP v2beta1 REST calls the SDK makes.

The server (tests/pipeline/fake_kfp_api.py) checks every body as KFP 2.5's API server does and
records every request, so the tests check what the kfp SDK really sent: the uploaded package,
the run's parameters, the experiment, the recurring run's schedule.
"""

from __future__ import annotations

import json
import socket

import pytest

from pipeline.submit import SubmitError, submit
from tests.pipeline.fake_kfp_api import Invalid, check_cron, check_message


@pytest.fixture
def package(tmp_path):
    path = tmp_path / "pipeline.yaml"
    path.write_text("pipelineInfo:\n  name: taxi-big-tipper\nroot: {}\nschemaVersion: 2.1.0\n")
    return str(path)


def _uploaded_file(request) -> bytes:
    from email.parser import BytesParser
    from email.policy import default

    _, _, headers, body = request
    message = BytesParser(policy=default).parsebytes(f"Content-Type: {headers['Content-Type']}\r\n\r\n".encode() + body)
    [part] = [p for p in message.iter_parts() if p.get_param("name", header="content-disposition") == "uploadfile"]
    return part.get_payload(decode=True)


def test_first_submit_uploads_a_new_pipeline_and_starts_a_run(kfp_api, package):
    result = submit(
        package,
        pipeline_name="taxi-big-tipper",
        endpoint=kfp_api.endpoint,
        experiment="taxi",
        parameters={"data_root": "/mnt/pipeline/data/2026-11"},
    )
    [upload] = kfp_api.calls("POST", "/pipelines/upload")
    assert b"schemaVersion: 2.1.0" in _uploaded_file(upload)
    assert result.pipeline_id == "p1" and result.version_id == "v1"
    assert kfp_api.experiments[result.experiment_id]["display_name"] == "taxi"
    run = kfp_api.runs[result.run_id]
    assert run["experiment_id"] == result.experiment_id
    assert run["pipeline_version_reference"] == {"pipeline_id": "p1", "pipeline_version_id": "v1"}
    assert run["runtime_config"]["parameters"] == {"data_root": "/mnt/pipeline/data/2026-11"}
    assert result.state is None  # not waited for


def test_second_submit_adds_a_version_and_reuses_the_experiment(kfp_api, package):
    first = submit(package, pipeline_name="taxi-big-tipper", endpoint=kfp_api.endpoint, experiment="taxi")
    second = submit(package, pipeline_name="taxi-big-tipper", endpoint=kfp_api.endpoint, experiment="taxi")
    assert second.pipeline_id == first.pipeline_id and second.version_id == "v2"
    assert len(kfp_api.calls("POST", "/pipelines/upload_version")) == 1
    assert second.experiment_id == first.experiment_id and len(kfp_api.experiments) == 1


def test_recurring_run_and_waiting(kfp_api, package):
    result = submit(
        package,
        pipeline_name="taxi-big-tipper",
        endpoint=kfp_api.endpoint,
        schedule="0 0 3 * * *",
        wait=True,
        timeout=30,
        pipeline_root="s3://ml/root",
    )
    [recurring] = kfp_api.calls("POST", "/recurringruns")
    sent = json.loads(recurring[3])
    assert sent["trigger"]["cron_schedule"]["cron"] == "0 0 3 * * *"
    assert sent["runtime_config"]["pipeline_root"] == "s3://ml/root"
    assert result.recurring_run_id == "rr1"
    assert result.state == "SUCCEEDED"


def test_bearer_token_is_sent(kfp_api, package):
    submit(package, pipeline_name="taxi-big-tipper", endpoint=kfp_api.endpoint, token="s3cret")
    [upload] = kfp_api.calls("POST", "/pipelines/upload")
    assert upload[2]["Authorization"] == "Bearer s3cret"


@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials(kfp_api, package, status):
    kfp_api.fail_all = status
    with pytest.raises(SubmitError, match=f"refused the request \\({status} .*set KFP_TOKEN"):
        submit(package, pipeline_name="taxi-big-tipper", endpoint=kfp_api.endpoint)


def test_unknown_experiment_id(kfp_api, package):
    kfp_api.fail[("POST", "/apis/v2beta1/runs")] = 404
    with pytest.raises(SubmitError, match="experiment e42 does not exist .*--experiment NAME"):
        submit(package, pipeline_name="taxi-big-tipper", endpoint=kfp_api.endpoint, experiment_id="e42")


def test_unreachable_host(package):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(SubmitError, match=f"cannot reach Kubeflow Pipelines at http://127.0.0.1:{port}"):
        submit(package, pipeline_name="taxi-big-tipper", endpoint=f"http://127.0.0.1:{port}")


def test_missing_package_and_endpoint(tmp_path, package):
    with pytest.raises(SubmitError, match="run `tfxp compile` first"):
        submit(str(tmp_path / "none.yaml"), pipeline_name="x", endpoint="http://127.0.0.1:1")
    with pytest.raises(SubmitError, match="no Kubeflow Pipelines endpoint"):
        submit(package, pipeline_name="x", endpoint=None)


def test_cli_submit_compiles_and_sends_the_config_as_parameters(kfp_api, capsys, monkeypatch, tmp_path):
    from tfxp.main import main

    monkeypatch.chdir(tmp_path)  # the compiled package goes to ./build/pipeline.yaml
    code = main(
        [
            "submit",
            "--endpoint",
            kfp_api.endpoint,
            "--set",
            "trainer.train_steps=123",
            "--param",
            "data_root=/mnt/pipeline/data/new",
            "--experiment",
            "nightly",
            "--set",
            "kubeflow.image=registry.example.com/ml/tfx:1",
        ]
    )
    assert code == 0, capsys.readouterr().err
    [run] = kfp_api.runs.values()
    # the run carries the pipeline root: KFP's API server does not read it from the spec
    assert run["runtime_config"]["pipeline_root"] == "minio://mlpipeline/v2/artifacts"
    parameters = run["runtime_config"]["parameters"]
    assert parameters["data_root"] == "/mnt/pipeline/data/new"
    assert json.loads(parameters["train_args"])["numSteps"] == 123
    assert (tmp_path / "build" / "pipeline.yaml").is_file()
    assert "run r1" in capsys.readouterr().out


def test_cli_submit_errors_are_one_line(capsys, tmp_path, package):
    from tfxp.commands import EXIT_BAD_INPUT, EXIT_FAILED
    from tfxp.main import main

    code = main(["submit", "--package", package, "--endpoint", "http://127.0.0.1:9"])
    err = capsys.readouterr().err
    assert code == EXIT_FAILED and err.startswith("error: cannot reach") and err.count("\n") == 1
    assert main(["submit", "--package", package, "--param", "nonsense"]) == EXIT_BAD_INPUT
    assert "expected NAME=VALUE with NAME one of data_root" in capsys.readouterr().err
    assert main(["submit", "--endpoint", "http://127.0.0.1:9"]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "kubeflow.image 'localhost/tfx-kfp-pipeline:latest' exists only on this machine" in err
    assert err.count("\n") == 1
    assert (
        main(["submit", "--package", package, "--endpoint", "http://127.0.0.1:9", "--schedule", "0 3 * * *"])
        == EXIT_BAD_INPUT
    )
    err = capsys.readouterr().err
    assert "has 5 fields; KFP's cron starts with seconds" in err and err.count("\n") == 1


def test_the_fake_refuses_what_the_api_server_refuses(kfp_api, package):
    # Held to KFP 2.5's checks, so a body the real server refuses cannot pass here.
    with pytest.raises(Invalid, match="unknown field 'pipeline_rot'"):
        check_message("v2beta1Run", {"display_name": "x", "runtime_config": {"pipeline_rot": "s3://a"}}, "run")
    with pytest.raises(Invalid, match="expected an integer"):
        check_message("v2beta1RecurringRun", {"max_concurrency": "one"}, "recurring_run")
    with pytest.raises(Invalid, match="not one of"):
        check_message("v2beta1RecurringRun", {"mode": "ON"}, "recurring_run")
    check_message("v2beta1RecurringRun", {"max_concurrency": "1", "mode": "ENABLE", "no_catchup": False}, "rr")
    for bad in ["0 3 * *", "0 0 3 * * * *", "0 61 * * *", "0 0 25 * * *", "@fortnightly", "0 0 3 * * x"]:
        with pytest.raises(Invalid):
            check_cron(bad)
    for good in ["0 0 3 * * *", "0 3 * * *", "*/30 * * * * mon-fri", "@daily", "@every 1h30m", "0 0 0 1 jan *"]:
        check_cron(good)


def test_a_standard_five_field_cron_is_refused_before_anything_is_sent(kfp_api, package):
    # KFP reads the first field as seconds: "0 3 * * *" would run hourly at minute 3.
    shifted = r"'0 3 \* \* \*' has 5 fields.*seconds=0 minutes=3 hours=\* .*'0 0 3 \* \* \*'"
    with pytest.raises(SubmitError, match=shifted):
        submit(package, pipeline_name="taxi-big-tipper", endpoint=kfp_api.endpoint, schedule="0 3 * * *")
    with pytest.raises(SubmitError, match="not a cron KFP can parse"):
        submit(package, pipeline_name="taxi-big-tipper", endpoint=kfp_api.endpoint, schedule="every day")
    assert kfp_api.requests == []
