"""Runs the Argo Workflow KFP's API server makes for a run, every step as its pod, with KFP's own binaries.

A stand-in for Argo's workflow controller and executor, and for Kubernetes' kubelet, on what
KFP 2.0.5's compiler writes (backend/src/v2/compiler/argocompiler): it walks the Workflow from
its entrypoint, each DAG template's tasks in topological order of their `depends` (or
`dependencies`), and runs each container template as the pod Argo would make of it, in podman,
with KFP's static `driver` and `launcher-v2` mounted into our image (they stand in for KFP's
driver and launcher images):

- arguments and `when` are filled in as Argo does (`{{inputs.parameters.X}}`,
  `{{tasks.T.outputs.parameters.X}}`, `{{workflow.annotations.X}}`, `{{workflow.uid}}`,
  `{{outputs.parameters.X.path}}`); a `when` is the `A != B` / `A == B` of strings KFP writes;
  so the executor of a task whose driver wrote `cached-decision` true is skipped by the
  `system-container-executor` template's own `when`, and a sub-DAG gets its DAG driver;
- output parameters are read from the files their `valueFrom.path` names (else the default);
- the executor pod (`podSpecPatch`): its init containers, then the main container with the
  driver's patch merged in (image, command, args, env, volume mounts; PVCs from the patch's
  volumes, each a host directory named by its claim), the template's environment (the
  downward API's pod name and uid, the `metadata-grpc-configmap`), and the command past Argo's
  `argoexec emissary --` (this runner is Argo's executor here); resources are not enforced.

Not reproduced: retries, loops (`withSequence`/`withItems`), exit handlers and the `||` of their
`depends`, daemon or resource templates; a Workflow with them is refused with one line. The
services every pod of a KFP install reaches (ML Metadata, the cache's TaskService, the object
store, the Kubernetes API) are `KfpServices`: SeaweedFS for the object store, kube-apiserver on
etcd for the Kubernetes API where the kfp-go directory has them (else the stand-in), the
stand-ins of tests/kfp_backend/ for the rest; `kfp_backend()` starts them with KFP's own API
server and stops them all.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import pathlib
import re
import shutil
import subprocess
import uuid
from typing import Any

ARGOEXEC = ["/var/run/argo/argoexec", "emissary", "--"]  # argocompiler/container.go: the patched command's head
SERVICE_ACCOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
BINARIES = ("driver", "launcher-v2")  # the KFP images' commands, mounted from KFP_GO
TOKEN = "service-account-token"  # the stand-in's; kube-apiserver gives each account a real one
NAMESPACE = "kubeflow"
# The object store's keys: in the Secret the launcher reads, and SeaweedFS's one identity.
S3_ACCESS_KEY, S3_SECRET_KEY = "tfxp-launcher", "tfxp-launcher-secret"


class StepFailed(RuntimeError):
    """A step of the Workflow failed: its path in the DAG, its pod's last log lines and the log's path."""

    def __init__(self, path: str, reason: str, logs: str = "", log_path: pathlib.Path | None = None):
        tail = "\n".join(logs.strip().splitlines()[-40:])
        where = f" (log: {log_path})" if log_path else ""
        tail = f"\n--- its pod's last log lines{where}:\n{tail}" if tail else where
        super().__init__(f"step {path} failed: {reason}{tail}")
        self.path, self.reason, self.logs, self.log_path = path, reason, logs, log_path


@dataclasses.dataclass
class Node:
    """One Workflow node that was reached: a DAG task, as Argo records it in the Workflow's status."""

    path: str  # e.g. root.Trainer-driver, root.Trainer.executor
    template: str
    phase: str  # Succeeded, Skipped (its `when` was false) or Omitted (an upstream did not succeed)
    outputs: dict[str, str] = dataclasses.field(default_factory=dict)
    log: pathlib.Path | None = None
    pod: str = ""  # the pod name its containers were given (KFP_POD_NAME)
    seconds: float = 0.0


class Pod:
    """Runs one container as a pod of the Workflow would: our image, the pod's files and env, host network."""

    def __init__(self, client, image: str, account: pathlib.Path, env: dict[str, str]):
        """`account`: the service account's files (namespace, token, ca.crt); `env`: every pod's."""
        self.client, self.image, self.account, self.env = client, image, pathlib.Path(account), env

    def run(self, name, command, volumes, env=None, logs_dir: pathlib.Path = pathlib.Path("logs")):
        """(exit code, logs, the log file under `logs_dir`)."""
        from tests.subprocesses import writable_as_fs_group

        writable_as_fs_group(volumes)  # the image runs as uid 10001
        container = self.client.containers.run(
            image=self.image,
            entrypoint=command[:1],
            command=command[1:],
            detach=True,
            name=f"tfxp-argo-{name}-{os.getpid()}"[:120],
            environment={**self.env, **(env or {})},
            volumes={
                str(self.account): {"bind": SERVICE_ACCOUNT, "mode": "ro"},
                **{str(host): {"bind": path, "mode": "rw"} for host, path in volumes.items()},
            },
            network_mode="host",  # the services listen on 127.0.0.1 of this machine
        )
        try:
            code = int(container.wait(timeout=1800)["StatusCode"])
            logs = container.logs(stdout=True, stderr=True).decode(errors="replace")
        finally:
            container.remove(force=True)
        log = pathlib.Path(logs_dir) / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(logs)
        return code, logs, log


def _service(command: list[str], log: pathlib.Path) -> tuple[subprocess.Popen, int]:
    """One of our Go stand-ins, started on a free port (it prints "listening on HOST:PORT")."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log.open("w"), text=True)
    return process, int(process.stdout.readline().rsplit(":", 1)[1])


class KfpServices:
    """What every pod of a KFP install reaches, on 127.0.0.1, kept from run to run.

    ML Metadata (mlmd_grpc.py, ml-metadata's own store on SQLite), the Kubernetes API, the
    cache's TaskService (`task-service`) and the object store of `minio://` roots (SeaweedFS, a
    real S3 server: seaweedfs.py); `env` is what Kubernetes and KFP's install give each pod in
    the namespace (the services' variables, the metadata-grpc-configmap). The Kubernetes API is
    kube-apiserver on etcd (kube_apiserver.py) where the kfp-go directory has them
    (`scripts/kfp-binaries.sh --kube`), else the stand-in kube_api.py; `kubernetes` says which.
    `account` holds the service-account files of the pods (KFP's `pipeline-runner`),
    `api_account` those of KFP's API server (`ml-pipeline`).
    """

    def __init__(self, work: pathlib.Path, kfp_go: pathlib.Path, bucket: str = "mlpipeline"):
        self.work, self.kfp_go, self.bucket = pathlib.Path(work), pathlib.Path(kfp_go), bucket
        self.processes: list[subprocess.Popen] = []
        self.metadata = self.kube = self.s3 = None
        self.kubernetes = ""

    def start(self) -> KfpServices:
        from tests.kfp_backend import kube_apiserver
        from tests.kfp_backend.kube_api import KubeApi
        from tests.kfp_backend.mlmd_grpc import MetadataServer
        from tests.kfp_backend.seaweedfs import SeaweedFS

        self.account, self.api_account = self.work / "serviceaccount", self.work / "apiserver-account"
        self.work.mkdir(parents=True, exist_ok=True)
        self.metadata = MetadataServer(str(self.work / "mlmd.sqlite")).start()
        try:
            secret = {"accesskey": S3_ACCESS_KEY, "secretkey": S3_SECRET_KEY}
            why = kube_apiserver.missing(self.kfp_go)
            if not why:
                self.kube = kube_apiserver.KubeApiServer(self.work / "kube", self.kfp_go, NAMESPACE, secret).start()
                tokens = {self.account: self.kube.tokens["pipeline-runner"]}
                tokens[self.api_account] = self.kube.tokens["ml-pipeline"]
                self.kubernetes = f"kube-apiserver {self.kube.version} on etcd (RBAC, service-account tokens)"
            else:
                self.kube = KubeApi(self.work, TOKEN, {(NAMESPACE, "mlpipeline-minio-artifact"): secret}).start()
                tokens = {self.account: TOKEN, self.api_account: TOKEN}
                self.kubernetes = f"kube_api.py, the stand-in ({why})"
            for account, token in tokens.items():
                account.mkdir(parents=True, exist_ok=True)
                (account / "namespace").write_text(NAMESPACE)
                (account / "token").write_text(token)
                shutil.copyfile(self.kube.ca, account / "ca.crt")
            cache, self.cache_port = _service(
                [str(self.kfp_go / "task-service"), "-addr", "127.0.0.1:0", "-store", str(self.work / "tasks.json")],
                self.work / "task-service.log",
            )
            self.processes.append(cache)
            self.s3 = SeaweedFS(self.kfp_go / "weed", self.work, self.bucket, S3_ACCESS_KEY, S3_SECRET_KEY)
            self.s3.start()
        except BaseException:  # the caller gets no KfpServices to stop
            self.stop()
            raise
        return self

    @property
    def env(self) -> dict[str, str]:
        port = str(self.metadata.port)
        return {
            "METADATA_GRPC_SERVICE_SERVICE_HOST": "127.0.0.1",
            "METADATA_GRPC_SERVICE_SERVICE_PORT": port,
            "ML_PIPELINE_SERVICE_HOST": "127.0.0.1",  # the API server's TaskService (the cache)
            "ML_PIPELINE_SERVICE_PORT_GRPC": str(self.cache_port),
            "MINIO_SERVICE_SERVICE_HOST": "127.0.0.1",  # the object store of minio:// roots
            "MINIO_SERVICE_SERVICE_PORT": str(self.s3.port),
            "KUBERNETES_SERVICE_HOST": "127.0.0.1",
            "KUBERNETES_SERVICE_PORT": str(self.kube.port),
        }

    @property
    def config_maps(self) -> dict[str, dict[str, str]]:
        # KFP's manifests: metadata-grpc-configmap holds the service's host and port.
        return {
            "metadata-grpc-configmap": {
                "METADATA_GRPC_SERVICE_HOST": "127.0.0.1",
                "METADATA_GRPC_SERVICE_PORT": str(self.metadata.port),
            }
        }

    def store(self):
        from ml_metadata import metadata_store
        from ml_metadata.proto import metadata_store_pb2

        config = metadata_store_pb2.MetadataStoreClientConfig(host="127.0.0.1", port=self.metadata.port)
        return metadata_store.MetadataStore(config)

    def objects(self, prefix: str) -> list[str]:
        """Keys under a prefix of the bucket, through SeaweedFS's S3 API, less the prefix."""
        return self.s3.objects(prefix)

    def read_object(self, key: str) -> bytes:
        return self.s3.read_object(key)

    def stop(self) -> None:
        for service in (self.metadata, self.kube, self.s3):
            if service is not None:
                service.stop()
        for process in self.processes:
            process.terminate()
            process.wait(timeout=30)


def make_workflow(kfp_go: pathlib.Path, pipeline: pathlib.Path, root: str, run_id: str, parameters: dict) -> dict:
    """The Workflow KFP's API server makes for a run (our `run-workflow`, calling its code)."""
    made = subprocess.run(
        [str(pathlib.Path(kfp_go) / "run-workflow"), "-pipeline", str(pipeline), "-pipeline_root", root]
        + ["-run_id", run_id, "-parameters", json.dumps(parameters)],
        capture_output=True,
        text=True,
    )
    if made.returncode != 0:
        raise RuntimeError(f"run-workflow failed: {made.stderr.strip()}")
    return json.loads(made.stdout)


_EXPRESSION = re.compile(r"{{\s*([^{}]+?)\s*}}")
_UNSUPPORTED = ("withItems", "withParam", "withSequence", "onExit", "hooks", "continueOn")


def upstream(task: dict[str, Any]) -> list[str]:
    """The tasks a DAG task waits for: `dependencies`, or the `X.Succeeded && ...` KFP writes in `depends`."""
    if task.get("dependencies"):
        return list(task["dependencies"])
    names = []
    for term in filter(None, (t.strip() for t in (task.get("depends") or "").split("&&"))):
        match = re.fullmatch(r"\(?\s*([A-Za-z0-9_-]+)(?:\.Succeeded)?\s*\)?", term)
        if not match:
            raise ValueError(f"task {task['name']}: depends {task['depends']!r} is not a conjunction of X.Succeeded")
        names.append(match.group(1))
    return names


def topological(tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The tasks in an order where each comes after its upstream ones (Kahn's, ties in Workflow order)."""
    by_name = {t["name"]: t for t in tasks}
    waiting = {t["name"]: set(upstream(t)) for t in tasks}
    for name, needs in waiting.items():
        unknown = needs - by_name.keys()
        if unknown:
            raise ValueError(f"task {name} depends on {sorted(unknown)}, not tasks of its DAG")
    order: list[dict[str, Any]] = []
    while waiting:
        ready = [name for name, needs in waiting.items() if not needs]
        if not ready:
            raise ValueError(f"the DAG has a cycle among {sorted(waiting)}")
        for name in ready:
            order.append(by_name[name])
            del waiting[name]
        for needs in waiting.values():
            needs.difference_update(ready)
    return order


def _when(expression: str) -> bool:
    """Argo's `when` for the forms KFP writes: `A != B` and `A == B` of plain strings."""
    match = re.fullmatch(r"\s*(\S*)\s*(!=|==)\s*(\S*)\s*", expression)
    if not match:
        raise ValueError(f"when {expression!r}: only A != B and A == B are supported")
    left, op, right = (s.strip("'\"") for s in match.groups())
    return (left != right) if op == "!=" else (left == right)


def _merge_by_name(base: list[dict], patch: list[dict]) -> list[dict]:
    """A strategic merge of lists keyed by `name` (containers, env, volumes), as Kubernetes' patch does."""
    merged = {item["name"]: dict(item) for item in base}
    for item in patch:
        merged[item["name"]] = {**merged.get(item["name"], {}), **item}
    return list(merged.values())


class ArgoRunner:
    """Walks one Workflow: `run()` returns every node reached, by path; a failed step raises StepFailed."""

    def __init__(
        self,
        workflow: dict[str, Any],
        pod: Pod,
        kfp_go: pathlib.Path,
        work: pathlib.Path,
        pvcs: pathlib.Path,
        config_maps: dict[str, dict[str, str]] | None = None,
        only: set[str] | None = None,
    ):
        """`pvcs`: a host directory per claim name; `only`: run just these pipeline tasks (and their drivers)."""
        self.workflow, self.pod, self.kfp_go = workflow, pod, pathlib.Path(kfp_go)
        self.work, self.pvcs = pathlib.Path(work), pathlib.Path(pvcs)
        self.config_maps = config_maps or {}
        self.only = only
        self.templates = {t["name"]: t for t in workflow["spec"]["templates"]}
        metadata = workflow["metadata"]
        self.uid = metadata.get("uid") or metadata["labels"]["pipeline/runid"]
        # Argo names a Workflow of KFP's (generateName: <pipeline>-) with five random characters.
        self.name = metadata.get("name") or metadata["generateName"] + self.uid.replace("-", "")[:5]
        self.nodes: dict[str, Node] = {}

    def run(self) -> dict[str, Node]:
        for template in self.templates.values():
            for key in _UNSUPPORTED:
                if key in template or any(key in t for t in (template.get("dag") or {}).get("tasks", [])):
                    raise ValueError(f"template {template['name']} uses {key}, which this runner does not reproduce")
        self._template(self.workflow["spec"]["entrypoint"], {}, self.name)
        return self.nodes

    # ---------------------------------------------------------------- substitution

    def _fill(self, text: str, scope: dict[str, str]) -> str:
        annotations = self.workflow["metadata"].get("annotations", {})

        def value(match: re.Match) -> str:
            expression = match.group(1)
            if expression in scope:
                return scope[expression]
            if expression.startswith("workflow.annotations."):
                return annotations[expression[len("workflow.annotations.") :]]
            if expression == "workflow.uid":
                return self.uid
            if expression == "workflow.name":
                return self.name
            raise ValueError(f"no value for {{{{{expression}}}}}")

        return _EXPRESSION.sub(value, text)

    # ---------------------------------------------------------------- templates

    def _template(self, name: str, arguments: dict[str, str], path: str) -> dict[str, str]:
        template = self.templates[name]
        inputs = {}
        for parameter in template.get("inputs", {}).get("parameters", []):
            if parameter["name"] in arguments:
                inputs[parameter["name"]] = arguments[parameter["name"]]
            elif "default" in parameter:
                inputs[parameter["name"]] = str(parameter["default"])
            elif "value" in parameter:
                inputs[parameter["name"]] = str(parameter["value"])
            else:
                raise StepFailed(path, f"template {name} needs the input parameter {parameter['name']}")
        if "dag" in template:
            return self._dag(template, inputs, path)
        if "container" in template:
            return self._container(template, inputs, path)
        raise ValueError(f"template {name}: only dag and container templates are reproduced")

    def _dag(self, template: dict[str, Any], inputs: dict[str, str], path: str) -> dict[str, str]:
        scope = {f"inputs.parameters.{k}": v for k, v in inputs.items()}
        for task in topological(template["dag"]["tasks"]):
            task_path = f"{path}.{task['name']}"
            pipeline_task = task["name"].removesuffix("-driver")
            if template["name"] == "root" and self.only is not None and pipeline_task not in self.only:
                continue
            if any(
                self.nodes.get(f"{path}.{up}", Node("", "", "Omitted")).phase != "Succeeded" for up in upstream(task)
            ):
                self.nodes[task_path] = Node(task_path, task["template"], "Omitted")
                continue
            arguments = {
                p["name"]: self._fill(str(p.get("value", p.get("default", ""))), scope)
                for p in task.get("arguments", {}).get("parameters", [])
            }
            if task.get("when") and not _when(self._fill(task["when"], scope)):
                self.nodes[task_path] = Node(task_path, task["template"], "Skipped")
                continue
            outputs = self._template(task["template"], arguments, task_path)
            node = self.nodes.setdefault(task_path, Node(task_path, task["template"], "Succeeded"))
            node.template, node.outputs = task["template"], outputs
            scope.update({f"tasks.{task['name']}.outputs.parameters.{k}": v for k, v in outputs.items()})
        return {}  # KFP's DAG templates declare no outputs: drivers pass them through ML Metadata

    def _container(self, template: dict[str, Any], inputs: dict[str, str], path: str) -> dict[str, str]:
        scope = {f"inputs.parameters.{k}": v for k, v in inputs.items()}
        name = path.split(".", 1)[-1].replace(".", "-").lower()
        outputs_dir = self.work / "outputs" / name
        declared = template.get("outputs", {}).get("parameters", [])
        out_paths = {p["name"]: p["valueFrom"]["path"] for p in declared}
        scope.update({f"outputs.parameters.{k}.path": v for k, v in out_paths.items()})
        mounts: dict[pathlib.Path, str] = {}
        for directory in {os.path.dirname(p) for p in out_paths.values()}:
            host = outputs_dir / directory.strip("/").replace("/", "_")
            host.mkdir(parents=True, exist_ok=True)
            mounts[host] = directory
        empty_dirs = {
            v["name"]: self.work / "emptydir" / name / v["name"] for v in template.get("volumes", []) if "emptyDir" in v
        }
        for host in empty_dirs.values():
            host.mkdir(parents=True, exist_ok=True)
        pod_name = f"{self.name}-{name}"[:63]
        pod_env = {"KFP_POD_NAME": pod_name, "KFP_POD_UID": str(uuid.uuid4())}

        for index, init in enumerate(template.get("initContainers", [])):
            init = self._filled(init, scope)
            self._run(f"{path} (init {init['name']})", f"{name}-init{index}", init, empty_dirs, {}, pod_env)
        main = self._filled(template["container"], scope)
        volumes = list(template.get("volumes", []))
        if template.get("podSpecPatch"):
            patch = json.loads(self._fill(template["podSpecPatch"], scope))
            unknown = set(patch) - {"containers", "volumes"}
            if unknown:
                raise StepFailed(path, f"the pod-spec patch sets {sorted(unknown)}, which this runner does not apply")
            # The patch is a parameter's value: Argo does not fill {{...}} in it (KFP's own
            # placeholders, {{$...}}, are the launcher's).
            [patched] = _merge_by_name([{**main, "name": "main"}], patch.get("containers", []))
            main = {
                **patched,
                "env": _merge_by_name(main.get("env", []), patched.get("env", [])),
                "volumeMounts": _merge_by_name(main.get("volumeMounts", []), patched.get("volumeMounts", [])),
            }
            if main["command"][: len(ARGOEXEC)] == ARGOEXEC:  # Argo's executor: this runner
                main["command"] = main["command"][len(ARGOEXEC) :]
            volumes = _merge_by_name(volumes, patch.get("volumes", []))
        claims = {
            v["name"]: self.pvcs / v["persistentVolumeClaim"]["claimName"]
            for v in volumes
            if "persistentVolumeClaim" in v
        }
        self._run(path, name, main, {**empty_dirs, **claims}, mounts, pod_env)
        outputs = {}
        for parameter in declared:
            host = next(h for h, d in mounts.items() if d == os.path.dirname(parameter["valueFrom"]["path"]))
            file = host / os.path.basename(parameter["valueFrom"]["path"])
            if file.exists():
                outputs[parameter["name"]] = file.read_text()
            elif "default" in parameter["valueFrom"]:
                outputs[parameter["name"]] = str(parameter["valueFrom"]["default"])
            else:
                raise StepFailed(path, f"the output parameter {parameter['name']} was not written")
        return outputs

    def _filled(self, container: dict[str, Any], scope: dict[str, str]) -> dict[str, Any]:
        """A template's container with Argo's {{...}} filled in its command, args and env values."""
        filled = dict(container)
        for key in ("command", "args"):
            if key in container:
                filled[key] = [self._fill(a, scope) for a in container[key]]
        filled["env"] = [
            {**v, "value": self._fill(v["value"], scope)} if "value" in v else v for v in container.get("env", [])
        ]
        return filled

    def _run(self, path, name, container, volumes, mounts, pod_env) -> None:
        """One container of the pod: KFP's binaries mounted in, $(VAR) expanded, the step's log kept."""
        import time

        env = dict(pod_env)
        for source in container.get("envFrom", []):
            env.update(self.config_maps.get(source.get("configMapRef", {}).get("name"), {}))
        for variable in container.get("env", []):
            if "value" in variable:
                env[variable["name"]] = variable["value"]
            elif variable.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.name":
                env[variable["name"]] = pod_env["KFP_POD_NAME"]
            elif variable.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.uid":
                env[variable["name"]] = pod_env["KFP_POD_UID"]
        command = list(container.get("command", []) + container.get("args", []))
        every = {**self.pod.env, **env}
        command = [re.sub(r"\$\(([A-Za-z0-9_]+)\)", lambda m: every.get(m.group(1), m.group(0)), a) for a in command]
        binds = dict(mounts)
        if command[0] in BINARIES:
            binds[self.kfp_go / command[0]] = f"/kfp-bin/{command[0]}"
            command[0] = f"/kfp-bin/{command[0]}"
        for mount in container.get("volumeMounts", []):
            if mount["name"] not in volumes:
                raise StepFailed(path, f"volume {mount['name']} is neither an emptyDir nor a PVC of the pod")
            volumes[mount["name"]].mkdir(parents=True, exist_ok=True)
            binds[volumes[mount["name"]]] = mount["mountPath"]
        started = time.monotonic()
        code, logs, log = self.pod.run(name, command, binds, env, self.work / "logs")
        node = self.nodes.setdefault(path, Node(path, "", "Succeeded"))
        node.log, node.pod = log, pod_env["KFP_POD_NAME"]
        node.seconds += time.monotonic() - started
        if code != 0:
            node.phase = "Failed"
            raise StepFailed(path, f"exit code {code}", logs, log)

    # ---------------------------------------------------------------- reading the result

    def task(self, name: str) -> dict[str, Any]:
        """A pipeline task's driver outputs and whether its executor ran (False: served from the cache)."""
        prefix = f"{self.name}.root."
        driver = self.nodes[f"{prefix}{name}-driver"]
        executor = self.nodes.get(f"{prefix}{name}.executor")
        return {
            "driver": driver,
            "cached": driver.outputs.get("cached-decision") == "true",
            "ran": executor is not None and executor.phase == "Succeeded",
            "executor": executor,
        }


# ---------------------------------------------------------------- KFP's own API server

# KFP 2.0.5's backend/src/apiserver/config/config.json, with our object store's credentials (the
# Secret's) and a short connection timeout (its 6m would hide a failure); its log archive is off.
API_SERVER_CONFIG = {
    "DBConfig": {
        "MySQLConfig": {"DBName": "mlpipeline", "GroupConcatMaxLen": "4194304"},
        "ConMaxLifeTime": "120s",
    },
    "ObjectStoreConfig": {
        "AccessKey": S3_ACCESS_KEY,  # the Secret's keys: SeaweedFS checks them
        "SecretAccessKey": S3_SECRET_KEY,
        "BucketName": "mlpipeline",
        "PipelinePath": "pipelines",
    },
    "DBDriverName": "mysql",
    "InitConnectionTimeout": "30s",
    "DEFAULTPIPELINERUNNERSERVICEACCOUNT": "pipeline-runner",
    "CacheEnabled": "true",
    "CRON_SCHEDULE_TIMEZONE": "UTC",
}


def api_server_missing() -> str:
    """Why KFP's API server cannot run here (its MariaDB is missing), or ''."""
    for tool in ("mariadbd", "mariadb-install-db"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed: `make test` installs Debian's mariadb-server (scripts/mariadb.sh)"
    return ""


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait(ready, what: str, alive, log, timeout: float = 120.0) -> None:
    """Polls `ready()` until true; raises with the log's tail if `alive()` turns false or time runs out."""
    import time

    deadline = time.monotonic() + timeout
    while not ready():
        if not alive() or time.monotonic() > deadline:
            tail = "\n".join(log().strip().splitlines()[-30:])
            raise RuntimeError(f"{what} did not start ({'exited' if not alive() else f'{timeout:.0f} s'}):\n{tail}")
        time.sleep(0.5)


class ApiServer:
    """KFP 2.0.5's own API server (the `apiserver` binary) on a MariaDB of its own, for `services`.

    MariaDB (Debian's mariadbd) runs as the user on a loopback port with a data directory under
    `services.work`. The API server runs as its pod would (backend/src/apiserver/main.go,
    client_manager.go): in a container of our image on the host network, with its service
    account's files (`services.api_account`, KFP's `ml-pipeline`) at their fixed path (client-go's
    in-cluster config reads them there), the
    config file above, the database and object store in its environment. At start it migrates
    the database, checks the bucket (HEAD, through `services`' S3 server) and makes the default
    experiment; its Kubernetes clients are only configured, not called. `env` points the
    drivers' and launchers' cache (ML_PIPELINE_SERVICE_*) at its gRPC port; `create_run` goes
    through its CreateRun, which creates the Workflow in `services.kube`.
    """

    def __init__(self, services: KfpServices, client, image: str):
        self.services, self.client, self.image = services, client, image
        self.work = services.work / "apiserver"
        self.database = self.container = self._socket_dir = None

    def start(self) -> ApiServer:
        """MariaDB, then the API server; `stop()` ends what started, also after a failed start."""
        import getpass
        import tempfile

        self.work.mkdir(parents=True, exist_ok=True)
        user = getpass.getuser()  # mariadbd runs as root only when told --user=root
        data, log = self.work / "mariadb", self.work / "mariadb.log"
        made = subprocess.run(
            ["mariadb-install-db", "--no-defaults", f"--datadir={data}", f"--user={user}", "--skip-test-db"]
            + ["--auth-root-authentication-method=normal"],
            capture_output=True,
            text=True,
        )
        if made.returncode != 0:
            raise RuntimeError(f"mariadb-install-db failed (exit {made.returncode}): {made.stderr.strip()[-2000:]}")
        self.db_port = _free_port()
        self._socket_dir = tempfile.mkdtemp(prefix="tfxp-mariadb-")  # a socket path must be short
        self.database = subprocess.Popen(
            ["mariadbd", "--no-defaults", f"--datadir={data}", f"--user={user}", f"--port={self.db_port}"]
            + ["--bind-address=127.0.0.1", f"--socket={self._socket_dir}/mysqld.sock", "--skip-log-bin"],
            stdout=subprocess.DEVNULL,
            stderr=log.open("w"),
        )
        _wait(lambda: self._listening(self.db_port), "MariaDB", lambda: self.database.poll() is None, log.read_text)

        config = self.work / "config"
        config.mkdir(exist_ok=True)
        (config / "config.json").write_text(json.dumps(API_SERVER_CONFIG, indent=2))
        (config / "samples.json").write_text("[]")  # main.go loads the samples it names: none
        self.rpc_port, self.http_port = _free_port(), _free_port()
        self.container = self.client.containers.run(
            image=self.image,
            entrypoint=["/kfp-bin/apiserver"],
            command=["-config", "/kfp-config", "-sampleconfig", "/kfp-config/samples.json", "-logtostderr"]
            # The RPC port as ":PORT" (every interface): main.go's HTTP proxy dials "localhost" + it.
            + ["-rpcPortFlag", f":{self.rpc_port}", "-httpPortFlag", f"127.0.0.1:{self.http_port}"],
            detach=True,
            name=f"tfxp-apiserver-{os.getpid()}",
            environment={
                **self.services.env,  # the object store's and the Kubernetes API's host and port
                "DBCONFIG_MYSQLCONFIG_HOST": "127.0.0.1",
                "DBCONFIG_MYSQLCONFIG_PORT": str(self.db_port),
                "POD_NAMESPACE": NAMESPACE,
                # main.go requires them; nothing the tests call reaches the visualization server.
                "ML_PIPELINE_VISUALIZATIONSERVER_SERVICE_HOST": "127.0.0.1",
                "ML_PIPELINE_VISUALIZATIONSERVER_SERVICE_PORT": "1",
            },
            volumes={
                str(self.services.kfp_go / "apiserver"): {"bind": "/kfp-bin/apiserver", "mode": "ro"},
                str(config): {"bind": "/kfp-config", "mode": "ro"},
                str(self.services.api_account): {"bind": SERVICE_ACCOUNT, "mode": "ro"},
            },
            network_mode="host",
        )

        def alive() -> bool:
            self.container.reload()
            return self.container.status in ("created", "running")

        _wait(lambda: self._healthy(), "KFP's API server", alive, self.log)
        return self

    @staticmethod
    def _listening(port: int) -> bool:
        import socket

        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", port)) == 0

    def _healthy(self) -> bool:
        # Through the HTTP proxy to the gRPC server too: main.go starts that in a goroutine beside
        # the proxy, whose healthz can answer first, and the proxy's calls answer 503 until its
        # connection to it is up (seen: "connect: connection refused" on the first CreateRun).
        try:
            return self._http("GET", "/apis/v1beta1/healthz")["multi_user"] is False and bool(
                self._http("GET", "/apis/v2beta1/experiments?page_size=1").get("experiments")
            )
        except (OSError, RuntimeError):
            return False

    @property
    def endpoint(self) -> str:
        """Its HTTP endpoint: the REST API the KFP SDK (`tfxp submit`) calls."""
        return f"http://127.0.0.1:{self.http_port}"

    def get(self, path: str) -> dict:
        """GET of its REST API, e.g. /apis/v2beta1/runs/ID: what it recorded."""
        return self._http("GET", path)

    def _http(self, method: str, path: str, body: dict | None = None) -> dict:
        import urllib.error
        import urllib.request

        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"http://127.0.0.1:{self.http_port}{path}", data=data, method=method)
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:
                return json.loads(answer.read() or b"{}")
        except urllib.error.HTTPError as refused:
            raise RuntimeError(f"KFP's API server refused {method} {path}: {refused.code} {refused.read()!r}") from None

    @property
    def env(self) -> dict[str, str]:
        """What a pod of KFP's install has for the API server (the drivers' and launchers' cache)."""
        return {"ML_PIPELINE_SERVICE_HOST": "127.0.0.1", "ML_PIPELINE_SERVICE_PORT_GRPC": str(self.rpc_port)}

    def create_run(self, pipeline: pathlib.Path, root: str, parameters: dict) -> tuple[str, dict]:
        """(run id, the Workflow it created): v2beta1 CreateRun of the compiled YAML, as the KFP SDK sends it."""
        import yaml

        documents = [d for d in yaml.safe_load_all(pathlib.Path(pipeline).read_text()) if d]
        spec = documents[0] if len(documents) == 1 else {"pipeline_spec": documents[0], "platform_spec": documents[1]}
        run = self._http(
            "POST",
            "/apis/v2beta1/runs",
            {
                "display_name": "taxi",
                "pipeline_spec": spec,
                "runtime_config": {"parameters": parameters, "pipeline_root": root},
            },
        )
        [workflow] = [
            w for w in self.services.kube.workflows if w["metadata"]["labels"]["pipeline/runid"] == run["run_id"]
        ]
        return run["run_id"], workflow

    def tasks(self) -> list[dict]:
        """The cache's entries: v1beta1 ListTasksV1 (the driver's call), every task."""
        return self._http("GET", "/apis/v1alpha1/tasks?page_size=100").get("tasks", [])

    def log(self) -> str:
        return self.container.logs(stdout=True, stderr=True).decode(errors="replace") if self.container else ""

    def stop(self) -> None:
        if self.container is not None:
            try:
                self.container.stop(timeout=10)
                (self.work / "apiserver.log").write_text(self.log())
            finally:
                self.container.remove(force=True)
        if self.database is not None:
            self.database.terminate()
            self.database.wait(timeout=60)
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)


# ---------------------------------------------------------------- services, podman client and API server together


@dataclasses.dataclass
class Backend:
    """What `kfp_backend()` started: the services, a Docker-API client of podman, KFP's API server (or None)."""

    services: KfpServices
    client: Any
    api: ApiServer | None
    missing: str  # why there is no API server, or ''

    @property
    def env(self) -> dict[str, str]:
        """A pod's environment: the services', and the API server's cache port where it runs."""
        return {**self.services.env, **(self.api.env if self.api else {})}


@contextlib.contextmanager
def kfp_backend(work: pathlib.Path, kfp_go: pathlib.Path, image: str, timeout: int = 900):
    """`KfpServices` under `work`, the podman client and, where MariaDB is installed, KFP's API server.

    Everything started is stopped on exit, also after a failed start. `timeout`: the client's,
    in seconds (a step's container is waited for this long).
    """
    import docker

    services = KfpServices(work, kfp_go).start()
    client = api = None
    try:
        client = docker.from_env(timeout=timeout)
        missing = api_server_missing()
        if not missing:
            api = ApiServer(services, client, image)
            api.start()  # stop() below ends what it started, also after a failed start
        yield Backend(services, client, api, missing)
    finally:
        try:
            if api is not None:
                api.stop()
        finally:
            try:
                if client is not None:
                    client.close()
            finally:
                services.stop()
