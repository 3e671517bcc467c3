"""A real Kubernetes API for the KFP-backend tiers: kube-apiserver on etcd, both built from the Go proxy.

`scripts/kfp-binaries.sh --kube` builds Kubernetes' own `kube-apiserver` (k8s.io/kubernetes
v1.37.2) and `etcd` (go.etcd.io/etcd/server/v3 v3.7.3) and links them into the kfp-go
directory, with the CustomResourceDefinitions of what KFP's API server creates under crds/
(Argo's Workflow, from the module of the version KFP 2.0.5's go.mod requires, the minimal CRD
KFP's install applies; KFP's ScheduledWorkflow). `KubeApiServer` runs both on 127.0.0.1 for the tests, in place
of the stand-in kube_api.py, and offers what the tests read of that (`ca`, `port`, `workflows`,
`scheduled_workflows`, `calls`, `unexpected`):

- etcd with a data directory of its own, client and peer ports on loopback, no fsync (test data);
- kube-apiserver over TLS with a CA and serving certificate of its own (openssl; the CA is the
  pods' `ca.crt`), authentication by bearer token: a static admin token (`--token-auth-file`,
  group system:masters) for this fixture, and for KFP's pods and API server real service-account
  tokens (TokenRequest, signed with the key given in the service-account flags); authorization
  RBAC, with a Role per account granting what KFP 2.0.5's code calls (`ROLES`); admission the
  default plugins but ServiceAccount (it needs the controller that makes each namespace's
  `default` account, which is not run: no controller manager, no scheduler, no kubelet);
- an audit log of every request (level Metadata): `calls` and `unexpected` are read from it, the
  requests of KFP's accounts, as the stand-in recorded them.

It then makes the namespace, the service accounts, the Roles and their bindings, the Secret
`mlpipeline-minio-artifact`, the `kfp-launcher` ConfigMap (as KFP's install makes it, with no
default pipeline root) and the two CRDs, and waits until their resources answer.
"""

from __future__ import annotations

import json
import pathlib
import secrets
import shutil
import subprocess
import time
import urllib.error
import urllib.request

# What KFP 2.0.5's binaries call of the Kubernetes API (file:line in backend/src/), as Roles: the
# pods' account (KFP's `pipeline-runner`: the driver and the launcher) and the API server's
# (`ml-pipeline`). KFP's own Roles grant far more (every verb on pods, services, deployments...).
ROLES = {
    "pipeline-runner": [
        # v2/objectstore/object_store.go:317 getMinioCredential (launcher, minio:// roots)
        {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["mlpipeline-minio-artifact"], "verbs": ["get"]},
        # v2/config/env.go:44 FromConfigMap (driver.go:146, a run without a pipeline root)
        {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["kfp-launcher"], "verbs": ["get"]},
        # v2/driver/driver.go:1176 (publishing a driver's execution: its pod)
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]},
        # v2/driver/driver.go:1345, 1447, 1453 (kfp-kubernetes' PVC create and delete tasks)
        {"apiGroups": [""], "resources": ["persistentvolumeclaims"], "verbs": ["create", "get", "delete"]},
    ],
    "ml-pipeline": [
        # apiserver/resource/resource_manager.go:520 CreateRun (common/util/workflow.go:806)
        {"apiGroups": ["argoproj.io"], "resources": ["workflows"], "verbs": ["create"]},
        # apiserver/resource/resource_manager.go:982 CreateJob (a recurring run)
        {"apiGroups": ["kubeflow.org"], "resources": ["scheduledworkflows"], "verbs": ["create"]},
    ],
}
WORKFLOWS = ("argoproj.io", "v1alpha1", "workflows")
SCHEDULED_WORKFLOWS = ("kubeflow.org", "v1beta1", "scheduledworkflows")
CRDS = ("workflows.argoproj.io", "scheduledworkflows.kubeflow.org")  # crds/NAME.yaml in the kfp-go directory
ISSUER = "https://kubernetes.default.svc.cluster.local"
# The audit verbs as the HTTP methods of the stand-in's record.
_METHODS = {"get": "GET", "list": "GET", "watch": "GET", "create": "POST", "update": "PUT", "patch": "PATCH"}


def missing(binaries: pathlib.Path) -> str:
    """Why the real API server cannot run from this kfp-go directory, or ''."""
    binaries = pathlib.Path(binaries)
    for name in ("kube-apiserver", "etcd"):
        if not (binaries / name).exists():
            return f"no {name} in {binaries}: `scripts/kfp-binaries.sh --kube` builds it"
    for name in CRDS:
        if not (binaries / "crds" / f"{name}.yaml").exists():
            return f"no CRD {name} in {binaries}/crds: `scripts/kfp-binaries.sh --kube` copies it"
    if shutil.which("openssl") is None:
        return "openssl is not installed: it makes the API server's certificates"
    return ""


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _tail(path: pathlib.Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").strip().splitlines()[-lines:]) if path.exists() else ""


class KubeApiServer:
    """etcd and kube-apiserver on 127.0.0.1, with KFP's namespace, accounts, Secret and CRDs made."""

    def __init__(self, directory: pathlib.Path, binaries: pathlib.Path, namespace: str, secret: dict[str, str]):
        """`secret`: the data of the Secret `mlpipeline-minio-artifact` in `namespace`."""
        self.dir, self.binaries = pathlib.Path(directory), pathlib.Path(binaries)
        self.namespace, self.secret = namespace, secret
        self.dir.mkdir(parents=True, exist_ok=True)
        self.ca = self.dir / "ca.crt"  # the pods' service-account ca.crt
        self.audit = self.dir / "audit.log"
        self.etcd = self.server = None
        self.tokens: dict[str, str] = {}  # account -> its service-account token
        self._admin = secrets.token_hex(16)
        self.version = ""

    # ------------------------------------------------------------------ start and stop

    def start(self) -> KubeApiServer:
        """etcd, then kube-apiserver, then KFP's objects; `stop()` ends what started, also after a failure."""
        try:
            self._certificates()
            self._start_etcd()
            self._start_server()
            self._bootstrap()
        except BaseException:
            self.stop()
            raise
        return self

    def _openssl(self, *args: str) -> None:
        made = subprocess.run(["openssl", *args], capture_output=True, text=True)
        if made.returncode != 0:
            raise RuntimeError(f"openssl {args[0]} failed: {made.stderr.strip()}")

    def _certificates(self) -> None:
        d = self.dir
        self._openssl(
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=tfxp-test-ca",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-keyout", str(d / "ca.key"), "-out", str(self.ca),
        )  # fmt: skip
        (d / "server.ext").write_text(
            "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\n"
            "extendedKeyUsage=serverAuth\nkeyUsage=digitalSignature,keyEncipherment\n"
            # Python 3.13's default TLS context is strict: a leaf certificate needs both (and the CA keyUsage).
            "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n"
        )
        self._openssl(
            "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=kube-apiserver",
            "-keyout", str(d / "server.key"), "-out", str(d / "server.csr"),
        )  # fmt: skip
        self._openssl(
            "x509", "-req", "-in", str(d / "server.csr"), "-CA", str(self.ca), "-CAkey", str(d / "ca.key"),
            "-CAcreateserial", "-days", "2", "-extfile", str(d / "server.ext"), "-out", str(d / "server.crt"),
        )  # fmt: skip
        self._openssl("genrsa", "-out", str(d / "service-account.key"), "2048")
        # token,user,uid,"groups": the fixture's own identity; KFP's accounts get real tokens.
        (d / "tokens.csv").write_text(f'{self._admin},tfxp-admin,tfxp-admin,"system:masters"\n')
        # Every request's metadata (user, verb, URI, answer), once, when answered.
        (d / "audit-policy.yaml").write_text(
            json.dumps(
                {
                    "apiVersion": "audit.k8s.io/v1",
                    "kind": "Policy",
                    "omitStages": ["RequestReceived", "ResponseStarted"],
                    "rules": [{"level": "Metadata"}],
                }
            )
        )

    def _start_etcd(self) -> None:
        client, peer = _free_port(), _free_port()
        self.etcd_url = f"http://127.0.0.1:{client}"
        log = self.dir / "etcd.log"
        self.etcd = subprocess.Popen(
            [str(self.binaries / "etcd"), "--name", "tfxp", "--data-dir", str(self.dir / "etcd")]
            + ["--listen-client-urls", self.etcd_url, "--advertise-client-urls", self.etcd_url]
            + ["--listen-peer-urls", f"http://127.0.0.1:{peer}"]
            + ["--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}"]
            + ["--initial-cluster", f"tfxp=http://127.0.0.1:{peer}", "--listen-metrics-urls", ""]
            + ["--unsafe-no-fsync", "--log-level", "warn"],
            stdout=subprocess.DEVNULL,
            stderr=log.open("w"),
        )

        def healthy() -> bool:
            try:
                with urllib.request.urlopen(f"{self.etcd_url}/health", timeout=2) as answer:
                    return json.loads(answer.read()).get("health") == "true"
            except (OSError, ValueError):
                return False

        self._wait(healthy, "etcd", self.etcd, log)

    def _start_server(self) -> None:
        d = self.dir
        self.port = _free_port()
        log = d / "kube-apiserver.log"
        self.server = subprocess.Popen(
            [str(self.binaries / "kube-apiserver"), f"--etcd-servers={self.etcd_url}"]
            + ["--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={self.port}"]
            + [f"--tls-cert-file={d / 'server.crt'}", f"--tls-private-key-file={d / 'server.key'}"]
            + [f"--token-auth-file={d / 'tokens.csv'}", "--authorization-mode=RBAC"]
            + [f"--service-account-issuer={ISSUER}", f"--service-account-key-file={d / 'service-account.key'}"]
            + [f"--service-account-signing-key-file={d / 'service-account.key'}"]
            + ["--service-cluster-ip-range=10.0.0.0/24", "--endpoint-reconciler-type=none"]
            + ["--disable-admission-plugins=ServiceAccount"]
            + [f"--audit-policy-file={d / 'audit-policy.yaml'}", f"--audit-log-path={self.audit}"]
            + ["--profiling=false", "--v=1"],
            stdout=subprocess.DEVNULL,
            stderr=log.open("w"),
        )

        def ready() -> bool:
            try:
                return self._call("GET", "/readyz", raw=True) == b"ok"
            except (OSError, RuntimeError):
                return False

        self._wait(ready, "kube-apiserver", self.server, log, timeout=180)
        self.version = self._call("GET", "/version")["gitVersion"]

    @staticmethod
    def _wait(ready, what: str, process: subprocess.Popen, log: pathlib.Path, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            if process.poll() is not None or time.monotonic() > deadline:
                why = f"exited {process.returncode}" if process.poll() is not None else f"{timeout:.0f} s"
                raise RuntimeError(f"{what} did not start ({why}; log {log}):\n{_tail(log)}")
            time.sleep(0.3)

    def stop(self) -> None:
        for process in (self.server, self.etcd):
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()

    # ------------------------------------------------------------------ KFP's objects

    def _bootstrap(self) -> None:
        import yaml

        ns = self.namespace
        self._call("POST", "/api/v1/namespaces", {"metadata": {"name": ns}})
        for name in CRDS:
            crd = yaml.safe_load((self.binaries / "crds" / f"{name}.yaml").read_text())
            self._call("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
        for account, rules in ROLES.items():
            self._call("POST", f"/api/v1/namespaces/{ns}/serviceaccounts", {"metadata": {"name": account}})
            self._call(
                "POST",
                f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles",
                {"metadata": {"name": account}, "rules": rules},
            )
            self._call(
                "POST",
                f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings",
                {
                    "metadata": {"name": account},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": account},
                    "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": ns}],
                },
            )
            # A day: longer than any tier runs; the API server's own default would be an hour.
            request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest"}
            request["spec"] = {"expirationSeconds": 86400}
            made = self._call("POST", f"/api/v1/namespaces/{ns}/serviceaccounts/{account}/token", request)
            self.tokens[account] = made["status"]["token"]
        self._call(
            "POST",
            f"/api/v1/namespaces/{ns}/secrets",
            {"metadata": {"name": "mlpipeline-minio-artifact"}, "stringData": self.secret},
        )
        launcher = {"metadata": {"name": "kfp-launcher"}, "data": {"defaultPipelineRoot": ""}}
        self._call("POST", f"/api/v1/namespaces/{ns}/configmaps", launcher)
        # A CRD's resource answers once it is Established and in the discovery documents.
        deadline = time.monotonic() + 60
        for group, version, plural in (WORKFLOWS, SCHEDULED_WORKFLOWS):
            while True:
                try:
                    self._call("GET", f"/apis/{group}/{version}/namespaces/{ns}/{plural}")
                    break
                except RuntimeError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.3)

    # ------------------------------------------------------------------ what the tests read

    @property
    def workflows(self) -> list[dict]:
        """The Workflows in the namespace, in the order they were created (no controller updates them)."""
        return self._list(WORKFLOWS)

    @property
    def scheduled_workflows(self) -> list[dict]:
        return self._list(SCHEDULED_WORKFLOWS)

    def _list(self, resource: tuple[str, str, str]) -> list[dict]:
        group, version, plural = resource
        items = self._call("GET", f"/apis/{group}/{version}/namespaces/{self.namespace}/{plural}")["items"]
        return sorted(items, key=lambda item: int(item["metadata"]["resourceVersion"]))

    def _events(self) -> list[dict]:
        """The audit log's events of KFP's accounts (not this fixture's own requests)."""
        prefix = f"system:serviceaccount:{self.namespace}:"
        events = []
        for line in self.audit.read_text().splitlines() if self.audit.exists() else []:
            event = json.loads(line)
            if event.get("user", {}).get("username", "").startswith(prefix):
                events.append(event)
        return events

    @staticmethod
    def _as_call(event: dict) -> str:
        """As the stand-in records a request: a GET's path, else 'METHOD path'."""
        path = event["requestURI"].split("?")[0]
        method = _METHODS.get(event["verb"], event["verb"].upper())
        return path if method == "GET" else f"{method} {path}"

    @property
    def calls(self) -> list[str]:
        """Every request of KFP's accounts (the pods' and the API server's), in order."""
        return [self._as_call(e) for e in self._events()]

    @property
    def unexpected(self) -> list[str]:
        """Those of KFP's requests that were refused or found nothing (an answer of 400 or more)."""
        return [
            f"{self._as_call(e)}: {e.get('responseStatus', {}).get('code')}"
            for e in self._events()
            if e.get("responseStatus", {}).get("code", 0) >= 400
        ]

    def request(self, method: str, path: str, body: dict | None = None, token: str | None = None) -> tuple[int, dict]:
        """(status, body) of one request as `token` (the admin's by default), whatever the answer."""
        status, payload = self._send(method, path, body, token or self._admin)
        return status, json.loads(payload or b"{}")

    def _send(self, method: str, path: str, body, token: str) -> tuple[int, bytes]:
        from tests.kfp_backend.common import kube_request

        return kube_request(self.port, self.ca, method, path, body, token)

    def _call(self, method: str, path: str, body=None, raw: bool = False):
        """The admin's request; anything but a 2xx answer raises."""
        status, payload = self._send(method, path, body, self._admin)
        if status >= 300:
            raise RuntimeError(f"kube-apiserver refused {method} {path}: {status} {payload[:500]!r}")
        return payload if raw else json.loads(payload or b"{}")
