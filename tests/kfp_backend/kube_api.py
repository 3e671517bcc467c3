"""A minimal Kubernetes API for KFP 2.0.5's launcher: the one call it makes, served over TLS.

With a `minio://` pipeline root the launcher reads the object store's credentials from the
Secret `mlpipeline-minio-artifact` (keys `accesskey`, `secretkey`) in the pod's namespace:
backend/src/v2/objectstore/object_store.go `getMinioCredential`, through client-go's in-cluster
config (`rest.InClusterConfig`: KUBERNETES_SERVICE_HOST/_PORT, the service account's `token`
and `ca.crt`). Nothing else of the Kubernetes API is called on the paths the tests run (the
driver reads the `kfp-launcher` ConfigMap only when a run has no pipeline root). KFP's own API
server, where a test runs it (argo_runner.py `ApiServer`), makes one call more: its CreateRun
creates the run's Workflow (POST .../apis/argoproj.io/v1alpha1/namespaces/NS/workflows), kept in
`workflows`, and its CreateRecurringRun the ScheduledWorkflow (POST
.../apis/kubeflow.org/v1beta1/namespaces/NS/scheduledworkflows), kept in `scheduled_workflows`; both
are answered as Kubernetes would (a name from its generateName, a uid).
Every other request answers 404 and is recorded, so a test sees a call it did not expect.
"""

from __future__ import annotations

import base64
import json
import pathlib
import ssl
import subprocess
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# The custom resources KFP's API server creates: (group, version, plural) of .../namespaces/NS/PLURAL
WORKFLOWS = ("argoproj.io", "v1alpha1", "workflows")
SCHEDULED_WORKFLOWS = ("kubeflow.org", "v1beta1", "scheduledworkflows")


class KubeApi:
    """Serves GET /api/v1/namespaces/NS/secrets/NAME for the secrets given, on 127.0.0.1 over TLS."""

    def __init__(self, directory: pathlib.Path, token: str, secrets: dict[tuple[str, str], dict[str, str]]):
        self.ca = directory / "ca.crt"  # the service account's ca.crt: the server's self-signed certificate
        key = directory / "api.key"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=kubernetes"]
            + ["-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(self.ca)],
            check=True,
            capture_output=True,
        )
        self.calls: list[str] = []
        self.unexpected: list[str] = []
        self.workflows: list[dict] = []  # as created, with the name and uid given
        self.scheduled_workflows: list[dict] = []
        kept = {WORKFLOWS: self.workflows, SCHEDULED_WORKFLOWS: self.scheduled_workflows}
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                api.calls.append(self.path)
                parts = self.path.split("?")[0].strip("/").split("/")
                found = None
                if self.headers.get("Authorization") == f"Bearer {token}" and len(parts) == 6:
                    if parts[:3] == ["api", "v1", "namespaces"] and parts[4] == "secrets":
                        found = secrets.get((parts[3], parts[5]))
                if found is None:
                    api.unexpected.append(self.path)
                    self._send(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404})
                    return
                data = {k: base64.b64encode(v.encode()).decode() for k, v in found.items()}
                metadata = {"name": parts[5], "namespace": parts[3]}
                self._send(200, {"kind": "Secret", "apiVersion": "v1", "metadata": metadata, "data": data})

            def do_POST(self):  # noqa: N802 (http.server's name)
                api.calls.append(f"POST {self.path}")
                parts = self.path.split("?")[0].strip("/").split("/")
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                resource = (*parts[1:3], parts[5]) if len(parts) == 6 and parts[0] == "apis" else None
                known = resource in kept and parts[3] == "namespaces"
                if not (known and self.headers.get("Authorization") == f"Bearer {token}"):
                    api.unexpected.append(f"POST {self.path}")
                    self._send(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404})
                    return
                metadata = body.setdefault("metadata", {})
                uid = str(uuid.uuid4())
                # Kubernetes' generateName: the prefix and five random characters
                metadata.setdefault("name", metadata.get("generateName", "workflow-") + uid.replace("-", "")[:5])
                metadata.update({"namespace": parts[4], "uid": uid, "creationTimestamp": "2026-01-01T00:00:00Z"})
                kept[resource].append(body)
                self._send(201, body)

            def _send(self, code: int, body: dict) -> None:
                payload = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(self.ca), str(key))
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> KubeApi:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
