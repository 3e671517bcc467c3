"""`tfxp promote`, `rollback` and `canary` through the command line, on fake SavedModels
(tests/serving/fake_saved_model.py) and no server: exit codes, one-line errors, the labels
moved, a serving directory from before the model config, and the notifications sent."""

from __future__ import annotations

import http.server
import json
import threading

import pytest

from contracts import model_config
from contracts.model_config import CANARY, PREVIOUS, STABLE, ModelConfig
from tests.serving import fake_saved_model
from tfxp.commands import EXIT_BAD_INPUT
from tfxp.main import main


@pytest.fixture
def webhook():
    """A local webhook that records the JSON bodies it is sent."""
    received: list[dict] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *_):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    server.shutdown()


def _setup(tmp_path, labels: dict[str, int] | None, versions=(100, 200)):
    serving = tmp_path / "serving" / "taxi"
    for version in versions:
        fake_saved_model.write(serving / str(version), str(version))
    if labels is not None:
        model_config.write_config(str(serving), ModelConfig("taxi", str(serving), tuple(versions), labels))
    return serving


def _tfxp(tmp_path, *args: str, url: str | None = None) -> int:
    sets = ["--set", f"output_dir={tmp_path}"] + (["--set", f"notify.url={url}"] if url else [])
    return main([*args, *sets])


def test_promote_and_rollback_move_the_labels_and_notify(tmp_path, capsys, webhook):
    url, received = webhook
    serving = _setup(tmp_path, {STABLE: 100, CANARY: 200})
    assert _tfxp(tmp_path, "promote", "--skip-checks", url=url) == 0
    out = capsys.readouterr().out
    assert "version 200 is stable (was 100); live checks skipped (--skip-checks)" in out
    assert model_config.read_config(str(serving), "taxi").labels == {STABLE: 200, CANARY: 200, PREVIOUS: 100}
    assert _tfxp(tmp_path, "rollback", url=url) == 0
    assert "version 100 is stable again (was 200)" in capsys.readouterr().out
    after = model_config.read_config(str(serving), "taxi")
    assert after.labels == {STABLE: 100, CANARY: 100} and after.versions == (100,)
    assert [(r["event"], r["details"]["version"]) for r in received] == [("promoted", 200), ("rolled_back", 100)]


@pytest.mark.parametrize(
    "args, wanted",
    [
        (["promote", "300", "--skip-checks"], "error: version 300 is not served (the model config loads 100, 200)"),
        (
            ["promote", "nightly", "--skip-checks"],
            "error: label 'nightly' does not exist; labels: canary=200, stable=100",
        ),
        (["rollback"], "error: no previous stable version is recorded (label 'previous')"),
        (["rollback", "stable"], "error: version 100 is already stable; nothing changed"),
        (["canary", "200"], "error: version 200 is already the canary; nothing changed"),
        (["canary", "7"], "error: version 7 is not served (the model config loads 100, 200)"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_changed(tmp_path, capsys, args, wanted):
    serving = _setup(tmp_path, {STABLE: 100, CANARY: 200})
    before = (serving / model_config.CONFIG_FILE).read_text()
    code = _tfxp(tmp_path, *args)
    err = capsys.readouterr().err.strip()
    assert code == EXIT_BAD_INPUT and err.startswith(wanted) and "\n" not in err, err
    assert (serving / model_config.CONFIG_FILE).read_text() == before


def test_without_a_model_config_rollback_version_copies_it_as_the_newest(tmp_path, capsys):
    serving = _setup(tmp_path, None)
    assert _tfxp(tmp_path, "rollback", "100") == 0
    assert "version 100 is served again, as version" in capsys.readouterr().out
    assert _tfxp(tmp_path, "promote", "--skip-checks") == EXIT_BAD_INPUT
    assert "no model config in" in capsys.readouterr().err
    assert not (serving / model_config.CONFIG_FILE).exists()


def test_canary_moves_to_a_loaded_version(tmp_path, capsys):
    serving = _setup(tmp_path, {STABLE: 100, CANARY: 200})
    assert _tfxp(tmp_path, "canary", "100") == 0
    assert "version 100 is the canary (was 200)" in capsys.readouterr().out
    assert model_config.read_config(str(serving), "taxi") == ModelConfig(
        "taxi", str(serving), (100,), {STABLE: 100, CANARY: 100}
    )
