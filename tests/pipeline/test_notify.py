"""pipeline/notify.py against a loopback HTTP server: the generic JSON and Slack bodies, and a
webhook that answers an error, does not answer or is not there, which cost one stderr line and
never the command's own exit code or error."""

from __future__ import annotations

import contextlib
import http.server
import json
import threading
import time

import pytest

from pipeline import notify
from pipeline.config import ConfigError, NotifyConfig, load_config
from tests.conftest import TINY_CSV
from tfxp.commands import EXIT_BAD_INPUT
from tfxp.main import main


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a client that gave up (the timeout test) is what the test wants, not a traceback


class Webhook(http.server.BaseHTTPRequestHandler):
    """Records each POST's JSON body; answers `status`, after `delay` seconds."""

    status = 200
    delay = 0.0

    def do_POST(self):  # noqa: N802 - http.server's name
        length = int(self.headers["Content-Length"])
        self.server.received.append(json.loads(self.rfile.read(length)))
        time.sleep(self.server.delay)
        self.send_response(self.server.status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def webhook(status: int = 200, delay: float = 0.0):
    server = _Server(("127.0.0.1", 0), Webhook)
    server.received, server.status, server.delay = [], status, delay
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, f"http://127.0.0.1:{server.server_address[1]}/hooks/secret-token"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _config(url: str, *extra: str):
    return load_config(None, [f"notify.url={url}", *extra])


def test_the_json_body_names_the_event_pipeline_and_details(capsys):
    with webhook() as (server, url):
        assert notify.notify(_config(url), notify.RUN_REFUSED, "pushed nothing", {"reasons": ["auc below"]})
    [received] = server.received
    assert received["event"] == "run_refused"
    assert received["pipeline"] == "taxi-big-tipper" and received["model"] == "taxi"
    assert received["text"] == "pushed nothing" and received["details"] == {"reasons": ["auc below"]}
    assert "T" in received["time"]
    assert capsys.readouterr().err == ""


def test_the_slack_body_is_one_text(capsys):
    with webhook() as (server, url):
        assert notify.notify(_config(url, "notify.format=slack"), notify.MONITOR_CROSSED, "2 crossed", {"version": 7})
    assert server.received == [{"text": "[taxi-big-tipper] 2 crossed\n• version: 7"}]


def test_an_error_answer_is_one_stderr_line_without_the_secret_path(capsys):
    with webhook(status=500) as (server, url):
        assert not notify.notify(_config(url), notify.RUN_FAILED, "failed")
    err = capsys.readouterr().err
    assert len(server.received) == 1
    assert err.count("\n") == 1 and "answered HTTP 500" in err
    assert "secret-token" not in err and err.startswith("notify: the run_failed notification to http://127.0.0.1:")


def test_a_webhook_that_does_not_answer_in_time_is_given_up(capsys):
    with webhook(delay=3.0) as (_, url):
        started = time.monotonic()
        assert not notify.notify(_config(url, "notify.timeout_seconds=0.5"), notify.RUN_FAILED, "failed")
        took = time.monotonic() - started
    assert took < 2.5
    assert "did not answer within 0.5 s" in capsys.readouterr().err


def test_a_webhook_that_is_not_there(capsys):
    with webhook() as (_, url):
        pass  # closed: the port refuses connections now
    assert not notify.notify(_config(url), notify.RUN_FAILED, "failed")
    assert "could not be reached" in capsys.readouterr().err


def test_url_env_reads_the_url_from_the_environment(capsys):
    settings = NotifyConfig(url_env="HOOK_URL")
    with webhook() as (server, url):
        assert notify.send(settings, notify.RUN_FAILED, "x", environ={"HOOK_URL": url})
    assert len(server.received) == 1
    assert not notify.send(settings, notify.RUN_FAILED, "x", environ={})
    assert "HOOK_URL, which is not set" in capsys.readouterr().err
    assert not notify.send(settings, notify.RUN_FAILED, "x", environ={"HOOK_URL": "hooks.example.com"})
    assert "HOOK_URL is not an http:// or https:// URL" in capsys.readouterr().err


def test_by_default_the_url_comes_from_tfxp_notify_url(capsys):
    with webhook() as (server, url):
        assert notify.send(NotifyConfig(), notify.MONITOR_CROSSED, "x", environ={notify.ENV_URL: url})
    assert len(server.received) == 1
    assert not notify.send(NotifyConfig(), notify.MONITOR_CROSSED, "x", environ={})
    assert capsys.readouterr().err == ""  # not configured at all: silent


def test_no_url_sends_nothing(capsys, monkeypatch):
    monkeypatch.delenv(notify.ENV_URL, raising=False)
    assert not notify.notify(load_config(None, []), notify.RUN_FAILED, "x")
    assert capsys.readouterr().err == ""


def test_an_unknown_event_is_the_callers_bug():
    with pytest.raises(ValueError, match="unknown notification event 'pushed'"):
        notify.send(NotifyConfig(url="http://127.0.0.1:9/"), "pushed", "x")


@pytest.mark.parametrize(
    "override, message",
    [
        ("notify.url=ftp://host/x", "notify.url: 'ftp://host/x' is not an http:// or https:// URL with a host"),
        ("notify.url=http:///path", "is not an http:// or https:// URL with a host"),
        ("notify.format=teams", "notify.format: 'teams' is not one of: json, slack"),
        ("notify.timeout_seconds=0", "notify.timeout_seconds"),
        ("notify.url_env=HOOK", "give notify.url or notify.url_env, not both"),
    ],
)
def test_bad_notify_settings_are_one_line(override, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace("+", r"\+")):
        load_config(None, [override, *([] if override.startswith("notify.url=") else ["notify.url=http://h/"])])


def test_a_failed_run_notifies_and_keeps_its_error_and_exit_code(capsys, tmp_path):
    args = ["run", "--set", f"output_dir={tmp_path}", "--set", "data.path=/no/such/data"]
    with webhook() as (server, url):
        code = main([*args, "--set", f"notify.url={url}"])
    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT
    assert err.startswith("error: data path /no/such/data does not exist") and err.count("\n") == 1
    [received] = server.received
    assert received["event"] == "run_failed" and "data path /no/such/data does not exist" in received["text"]


def test_a_failing_webhook_does_not_change_a_failed_runs_outcome(capsys, tmp_path):
    args = [
        "run",
        "--set",
        f"output_dir={tmp_path}",
        "--set",
        f"data.path={TINY_CSV}",
        "--set",
        "features.nope.type=numeric",
    ]
    with webhook(status=503) as (_, url):
        code = main([*args, "--set", f"notify.url={url}"])
    err = capsys.readouterr().err.splitlines()
    assert code == EXIT_BAD_INPUT
    assert err[0].startswith("notify: the run_failed notification") and "HTTP 503" in err[0]
    assert err[1].startswith("error: ") and "feature column(s) 'nope'" in err[1] and len(err) == 2
    assert not (tmp_path / "serving").exists()


def test_a_failing_kubeflow_step_notifies_from_its_environment():
    from pipeline import kfp_executor

    with webhook() as (server, url):
        kfp_executor._notify_failure(
            "tfx.components.statistics_gen.executor.Executor",
            RuntimeError("disk full"),
            {notify.ENV_URL: url, notify.ENV_FORMAT: "slack", "KFP_POD_NAME": "run-x-1"},
        )
    [received] = server.received
    assert received["text"].startswith("[tfxp] a Kubeflow step (statistics_gen) failed: RuntimeError: disk full")
    assert "pod: run-x-1" in received["text"]


def _run_page_step(tmp_path, refuse: bool, environ: dict, monkeypatch) -> None:
    """pipeline/kfp_executor.py runs a step that stands for RunPage through TFX's real entrypoint."""
    from pipeline import kfp_executor

    monkeypatch.setattr(kfp_executor, "RUN_PAGE_EXECUTOR", "tests.pipeline.refusing_executor.Executor")
    executor_input = {
        "inputs": {"parameterValues": {"title": "taxi-big-tipper: taxi", "refuse": int(refuse)}},
        "outputs": {
            "artifacts": {
                "report": {"artifacts": [{"uri": str(tmp_path / "report"), "type": {"schemaTitle": "system.HTML"}}]}
            },
            "outputFile": str(tmp_path / "out" / "output_metadata.json"),
        },
    }
    html = "title: components.run_page.artifacts.HTML\ntype: object\n"
    executor_input["outputs"]["artifacts"]["report"]["artifacts"][0]["type"] = {"instanceSchema": html}
    kfp_executor.run(
        [
            "--executor_class_path",
            "tests.pipeline.refusing_executor.Executor",
            "--json_serialized_invocation_args",
            json.dumps(executor_input),
            "--json_serialized_inputs_spec_args",
            json.dumps(
                {"parameters": {"title": {"parameterType": "STRING"}, "refuse": {"parameterType": "NUMBER_INTEGER"}}}
            ),
        ],
        environ=environ,
    )


def test_a_refused_kubeflow_run_notifies_after_its_run_page(tmp_path, monkeypatch, capsys):
    """The report's refused_reasons go through TFX's entrypoint into the output metadata, and
    kfp_executor posts run_refused with the run page's title and the reasons."""
    with webhook() as (server, url):
        _run_page_step(tmp_path, True, {notify.ENV_URL: url, "KFP_POD_NAME": "run-x-9"}, monkeypatch)
    [received] = server.received
    assert received["event"] == "run_refused"
    assert received["text"] == (
        "a Kubeflow run of taxi-big-tipper: taxi pushed nothing: auc = 0.61 below the threshold 0.7"
    )
    assert received["details"] == {"pod": "run-x-9", "reasons": ["auc = 0.61 below the threshold 0.7"]}


def test_a_pushed_kubeflow_run_does_not_notify(tmp_path, monkeypatch):
    with webhook() as (server, url):
        _run_page_step(tmp_path, False, {notify.ENV_URL: url, "KFP_POD_NAME": "run-x-9"}, monkeypatch)
    assert server.received == []


def test_a_dead_webhook_costs_the_run_page_one_line(tmp_path, monkeypatch, capsys):
    with webhook() as (server, url):
        pass  # shut down: nothing listens at the URL any more
    _run_page_step(tmp_path, True, {notify.ENV_URL: url}, monkeypatch)  # the step does not fail
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("notify:")]
    assert len(lines) == 1 and "run_refused" in lines[0] and "could not be reached" in lines[0]
    assert (tmp_path / "out" / "output_metadata.json").is_file()


def _exit_input(status) -> str:
    return json.dumps({"inputs": {"parameterValues": {"status": status}}, "outputs": {}})


def _kfp_notify(executor_input: str, environ: dict):
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "pipeline.kfp_notify", "--executor_input", executor_input, "--pipeline", "taxi"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", **environ},
        timeout=60,
    )


FAILED = {
    "state": "FAILED",
    "pipelineJobResourceName": "taxi-run-7",
    "pipelineTaskName": "exit-handler-1",
    "error": {"code": 9, "message": "pod Trainer OOMKilled"},
}


def test_the_exit_handler_posts_run_failed_with_the_task_and_error():
    with webhook() as (server, url):
        result = _kfp_notify(_exit_input(FAILED), {notify.ENV_URL: url, "KFP_POD_NAME": "taxi-run-7-exit"})
    assert result.returncode == 0, result.stderr
    [received] = server.received
    assert received["event"] == "run_failed" and received["pipeline"] == "taxi"
    assert received["text"] == "a Kubeflow run of taxi failed: exit-handler-1 ended FAILED: pod Trainer OOMKilled"
    assert received["details"] == {
        "state": "FAILED",
        "task": "exit-handler-1",
        "run": "taxi-run-7",
        "error": "pod Trainer OOMKilled",
        "code": 9,
        "pod": "taxi-run-7-exit",
    }


@pytest.mark.parametrize("state", ["SUCCEEDED", "COMPLETE", "CACHED"])
def test_the_exit_handler_posts_nothing_for_a_completed_run(state):
    from pipeline import kfp_notify

    with webhook() as (server, url):
        assert kfp_notify.handle({**FAILED, "state": state, "error": {}}, "taxi", {notify.ENV_URL: url}) is False
    assert server.received == []


@pytest.mark.parametrize("state", ["RUNNING", "CANCELED", "CANCELLED"])
def test_a_body_that_never_completed_is_a_failure(state):
    """KFP's driver reports the body's ML Metadata state: an OOM-killed pod leaves it RUNNING."""
    from pipeline import kfp_notify

    with webhook() as (server, url):
        assert kfp_notify.handle({"state": state, "error": {}}, "taxi", {notify.ENV_URL: url}) is True
    [received] = server.received
    assert received["text"] == f"a Kubeflow run of taxi failed: the pipeline ended {state}"


def test_the_exit_handler_with_a_dead_webhook_warns_once_and_ends_0():
    with webhook() as (server, url):
        pass
    result = _kfp_notify(_exit_input(json.dumps(FAILED)), {notify.ENV_URL: url})  # the status as a JSON string
    assert result.returncode == 0
    warnings = [line for line in result.stderr.splitlines() if line.startswith("notify:")]
    assert len(warnings) == 1 and "run_failed" in warnings[0] and "could not be reached" in warnings[0]


def test_the_exit_handler_without_a_status_is_one_line_and_exit_2():
    result = _kfp_notify(json.dumps({"inputs": {"parameterValues": {}}}), {})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: the executor input has no input parameter 'status' with a state; the exit task must take a "
        "taskFinalStatus (recompile with `tfxp compile`)"
    ]


def test_the_exit_handler_refuses_an_executor_input_that_is_not_json():
    result = _kfp_notify("{not json", {})
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: --executor_input is not JSON (")
