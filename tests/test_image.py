"""The image every Kubeflow step runs in (Dockerfile): the project installed, every package of
docs/layers.md importable, the `tfxp` command on the path, and no test or lint tools
(requirements/dev.in stays out of it). It runs as uid 10001 by default, and works as a pod with
runAsNonRoot, that uid and readOnlyRootFilesystem runs it: the root file system read-only,
emptyDir volumes at /tmp and HOME, the PVC at /mnt/pipeline (kubernetes/monitoring/cronjob.yaml,
the compiled pipeline's platform spec), no capabilities, no privilege escalation."""

from __future__ import annotations

import json
import os
import pathlib

import pytest

from tests.conftest import FLOORS, NEEDS_PODMAN_AND_IMAGE

pytestmark = NEEDS_PODMAN_AND_IMAGE

PROBE = """
import importlib, importlib.util, json, shutil
print(json.dumps({
    "imported": [importlib.import_module(p).__name__ for p in PACKAGES],
    "tfxp": shutil.which("tfxp"),
    "dev_tools": [m for m in ("pytest", "_pytest", "pytest_timeout", "ruff") if importlib.util.find_spec(m)],
}))
"""


STEP_UID = 10001  # the Dockerfile's USER, pipeline/kubeflow_runner.py STEP_UID
# What a restricted pod gives the container: the settings of kubernetes/monitoring/cronjob.yaml
# and of each compiled step, and emptyDir volumes (mode 0777, as Kubernetes makes them).
AS_A_POD = {
    "user": f"{STEP_UID}:{STEP_UID}",
    "read_only": True,
    "tmpfs": {d: "rw,mode=1777" for d in ("/tmp", "/home/tfxp", "/gcs", "/minio", "/s3")},
    "cap_drop": ["ALL"],
    "security_opt": ["no-new-privileges"],
}


def _run(command: list[str], timeout: float = 600, **options) -> tuple[int, str]:
    import docker

    client = docker.from_env(timeout=int(timeout) + 60)
    # Not auto-removed: podman removes such a container before its exit code can be read.
    container = client.containers.run(os.environ["TFXP_IMAGE"], command, detach=True, **options)
    try:
        code = container.wait(timeout=timeout)["StatusCode"]
        return code, container.logs().decode()
    finally:
        container.remove(force=True)


def test_the_image_holds_the_project_and_no_test_tools():
    packages = [p for p in FLOORS if p != "benchmarks"]  # benchmarks measure; the image runs steps
    code, out = _run(["python", "-c", f"PACKAGES = {packages!r}\n{PROBE}"])
    assert code == 0, out
    found = json.loads(out.strip().splitlines()[-1])
    assert found["imported"] == packages
    assert found["tfxp"], "the tfxp command is not on the image's PATH"
    assert found["dev_tools"] == [], f"test or lint tools in the image: {found['dev_tools']}"


@pytest.mark.parametrize(
    "command",
    [
        ["tfxp", "--help"],
        ["python", "-m", "tfxp", "config"],
        # LightGBM's library loads only with the OpenMP runtime (libgomp1) in the image.
        ["python", "-c", "import lightgbm"],
    ],
)
def test_the_command_runs_in_the_image(command):
    code, out = _run(command)
    assert code == 0, out


def test_the_image_runs_as_uid_10001_and_cannot_change_its_code():
    code, out = _run(
        [
            "sh",
            "-c",
            'id -u; id -g; echo "$HOME"; touch /opt/venv/probe 2>/dev/null || echo venv-read-only; '
            'touch "$HOME/probe" && echo home-writable; touch /tmp/probe && echo tmp-writable',
        ]
    )
    assert code == 0, out
    assert out.split() == [
        str(STEP_UID),
        str(STEP_UID),
        "/home/tfxp",
        "venv-read-only",
        "home-writable",
        "tmp-writable",
    ]


# Inside one container run as a pod runs it: a whole local run on the PVC, then the commands that
# read and serve what it made. Each line's status is printed, so a failure names its command.
AS_A_POD_SCRIPT = """
set -u
out=/mnt/pipeline/out
settings="--set data.path=/mnt/pipeline/data --set output_dir=$out --set tuner.enabled=false \
  --set trainer.train_steps=200 --set trainer.eval_steps=10"
step() { name=$1; shift; "$@" >/tmp/step.log 2>&1; code=$?; echo "STEP $name $code"; \
  [ $code = 0 ] || tail -20 /tmp/step.log; }
step run tfxp run $settings
step runs tfxp runs $settings
step lineage tfxp lineage $settings
step doctor tfxp doctor $settings
step export-schema tfxp export-schema $settings --output /tmp/schema.pbtxt
step compile tfxp compile $settings --allow-local-image --output /tmp/pipeline.yaml
step report tfxp report $settings
tfxp serve $settings --rest-port 8501 --grpc-port 8500 >/tmp/serve.log 2>&1 &
tfxp log-proxy --upstream http://127.0.0.1:8501 --port 8080 --log-dir /tmp/requests >/tmp/proxy.log 2>&1 &
for i in $(seq 120); do tfxp predict $settings --status >/dev/null 2>&1 && break; sleep 1; done
head -4 /mnt/pipeline/data/data.csv > /tmp/rows.csv
step predict tfxp predict $settings /tmp/rows.csv
step predict-through-proxy tfxp predict $settings --url http://127.0.0.1:8080 /tmp/rows.csv
kill %1 %2
"""


@pytest.mark.slow
def test_a_whole_local_run_and_the_commands_work_as_a_restricted_pod_runs_them(taxi_config, tmp_path):
    pvc = tmp_path / "pvc"
    (pvc / "data").mkdir(parents=True)
    rows = pathlib.Path(taxi_config.data.path, "data.csv").read_text().splitlines(keepends=True)[:3001]
    (pvc / "data" / "data.csv").write_text("".join(rows))
    # The PVC as the pod's fsGroup makes it: writable by the step's uid.
    for path in [pvc, *pvc.rglob("*")]:
        os.chown(path, STEP_UID, STEP_UID)
    code, out = _run(
        ["sh", "-c", AS_A_POD_SCRIPT],
        timeout=1500,
        volumes={str(pvc): {"bind": "/mnt/pipeline", "mode": "rw"}},
        **AS_A_POD,
    )
    steps = dict(line.split()[1:] for line in out.splitlines() if line.startswith("STEP "))
    assert steps == {
        name: "0"
        for name in (
            "run",
            "runs",
            "lineage",
            "doctor",
            "export-schema",
            "compile",
            "report",
            "predict",
            "predict-through-proxy",
        )
    }, out[-5000:]
    assert [p.name for p in (pvc / "out" / "serving" / "taxi").iterdir() if p.name.isdigit()], out[-3000:]
    assert all(p.stat().st_uid == STEP_UID for p in pathlib.Path(pvc / "out").rglob("*"))
