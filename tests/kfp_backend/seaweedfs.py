"""SeaweedFS as the object store of KFP's `minio://` roots: a real S3 server, on 127.0.0.1.

`weed server -s3` (SeaweedFS, Apache-2.0, built from the Go module proxy by
scripts/kfp-binaries.sh) runs a master, a volume server, a filer and the S3 gateway in one
process, with its data in a directory of ours. Its S3 identity config holds one identity, with
the access key and secret of the Secret KFP's launcher reads (kube_api.py), allowed everything:
the launcher's requests are checked against them (AWS Signature V4), and a request without
them is refused. The bucket is created through the S3 API before the first pod runs.

Our own requests (make the bucket, list and read objects in tests) are signed here with the
standard library: the runtime has no S3 client library.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import json
import pathlib
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET

REGION = "us-east-1"  # minio-go's default, which KFP's launcher leaves as is; SeaweedFS takes any


def free_ports(count: int) -> list[int]:
    """Ports nothing listens on now, on 127.0.0.1 (held together, so they differ)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def sign(method: str, url: str, access_key: str, secret_key: str, body: bytes = b"", now=None) -> dict[str, str]:
    """The headers of an AWS Signature V4 request to S3 (the header form, the payload hashed)."""
    parts = urllib.parse.urlsplit(url)
    now = now or datetime.datetime.now(datetime.timezone.utc)
    stamp, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    payload = hashlib.sha256(body).hexdigest()
    headers = {"host": parts.netloc, "x-amz-content-sha256": payload, "x-amz-date": stamp}
    query = sorted(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
    canonical = "\n".join(
        [
            method,
            urllib.parse.quote(parts.path or "/", safe="/-_.~"),
            "&".join(f"{urllib.parse.quote(k, safe='-_.~')}={urllib.parse.quote(v, safe='-_.~')}" for k, v in query),
            "".join(f"{k}:{v}\n" for k, v in sorted(headers.items())),
            ";".join(sorted(headers)),
            payload,
        ]
    )
    scope = f"{day}/{REGION}/s3/aws4_request"
    to_sign = f"AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    key = f"AWS4{secret_key}".encode()
    for part in (day, REGION, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, SignedHeaders={';'.join(sorted(headers))}, "
        f"Signature={signature}"
    )
    return headers


class SeaweedFS:
    """`weed server -s3` on free ports of 127.0.0.1, its data and log under `work`, one bucket made."""

    def __init__(self, weed: pathlib.Path, work: pathlib.Path, bucket: str, access_key: str, secret_key: str):
        self.weed, self.work, self.bucket = pathlib.Path(weed), pathlib.Path(work), bucket
        self.access_key, self.secret_key = access_key, secret_key
        self.log = self.work / "seaweedfs.log"
        self.process: subprocess.Popen | None = None
        self.port = 0
        self._ports: list[int] = []

    def start(self, timeout: float = 120) -> SeaweedFS:
        data = self.work / "seaweedfs"
        data.mkdir(parents=True, exist_ok=True)
        config = self.work / "s3-identities.json"
        identity = {"name": "kfp", "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}]}
        config.write_text(json.dumps({"identities": [{**identity, "actions": ["Admin", "Read", "List", "Write"]}]}))
        master, master_grpc, volume, volume_grpc, filer, filer_grpc, self.port, s3_grpc = free_ports(8)
        command = [str(self.weed), "server", f"-dir={data}", "-ip=127.0.0.1"]
        command += [f"-master.port={master}", f"-master.port.grpc={master_grpc}", "-master.telemetry=false"]
        # preStopSeconds: the volume server's wait for the master to notice its going, 10 s by default.
        command += [f"-volume.port={volume}", f"-volume.port.grpc={volume_grpc}", "-volume.preStopSeconds=0"]
        command += [f"-filer.port={filer}", f"-filer.port.grpc={filer_grpc}"]
        # The Iceberg and Lance catalogs beside the S3 gateway would take fixed ports: off.
        command += ["-s3", f"-s3.port={self.port}", f"-s3.port.grpc={s3_grpc}", f"-s3.config={config}"]
        command += ["-s3.port.iceberg=0", "-s3.port.lance=0"]
        with self.log.open("w") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=self.work)
        self._ports = [master_grpc, volume_grpc, filer, filer_grpc, self.port, s3_grpc]
        # Ready when the bucket is made and an object written and deleted: the gateway answers once
        # the filer is up, and the first write waits for the master to grow the bucket's volumes
        # (seconds), which would otherwise fall on the first step that uploads.
        deadline, last = time.monotonic() + timeout, "no answer"
        steps = [("PUT", f"/{self.bucket}"), ("PUT", f"/{self.bucket}/.ready"), ("DELETE", f"/{self.bucket}/.ready")]
        while steps and time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"SeaweedFS exited with code {self.process.returncode} on start; log: {self.log}")
            try:
                status, body = self.request(*steps[0], body=b"ready" if steps[0][1].endswith(".ready") else b"")
            except OSError as error:  # not listening yet
                status, body = 0, str(error).encode()
            if status in (200, 204) or b"BucketAlreadyOwnedByYou" in body:
                steps.pop(0)
            else:
                last = f"{steps[0][0]} {steps[0][1]}: {status} {body[:200]!r}"
                time.sleep(0.5)
        if steps:
            self.stop()
            raise RuntimeError(f"SeaweedFS was not ready in {timeout:.0f} s ({last}); log: {self.log}")
        return self

    def request(self, method: str, path: str, query=None, body: bytes = b"", credentials=None) -> tuple[int, bytes]:
        """(status, body) of an S3 request, signed with `credentials` (access key, secret): by default the
        identity's; `()` sends it unsigned."""
        url = f"http://127.0.0.1:{self.port}{urllib.parse.quote(path, safe='/-_.~')}"
        if query:
            url += "?" + urllib.parse.urlencode(query, quote_via=urllib.parse.quote)
        keys = (self.access_key, self.secret_key) if credentials is None else credentials
        headers = sign(method, url, *keys, body=body) if keys else {}
        headers.pop("host", None)  # urllib sends the same one
        request = urllib.request.Request(url, data=body if method == "PUT" else None, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return answer.status, answer.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def objects(self, prefix: str, page: int = 1000) -> list[str]:
        """Keys under a prefix of the bucket, through the S3 API (ListObjectsV2, `page` keys a request),
        less the prefix."""
        keys, token = [], None
        while True:
            query = {"list-type": "2", "prefix": prefix, "max-keys": str(page)}
            query.update({"continuation-token": token} if token else {})
            status, body = self.request("GET", f"/{self.bucket}", query)
            if status != 200:
                raise RuntimeError(f"listing {prefix!r} in SeaweedFS: {status} {body[:300]!r}")
            tree = ET.fromstring(body)
            keys += [k.text[len(prefix) :] for k in tree.iter() if k.tag.split("}")[-1] == "Key"]
            token = next((t.text for t in tree.iter() if t.tag.split("}")[-1] == "NextContinuationToken"), None)
            if not token:
                return keys

    def read_object(self, key: str) -> bytes:
        status, body = self.request("GET", f"/{self.bucket}/{key}")
        if status != 200:
            raise RuntimeError(f"reading {key!r} from SeaweedFS: {status} {body[:300]!r}")
        return body

    def stop(self) -> None:
        """Stops it; its data stays for a look. A graceful stop takes 15 s (the filer retries its
        metadata log against the stopped volume server), so after 5 s it is killed."""
        if not self.process or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            # The Unix sockets it listens on beside its ports, which only a graceful stop removes.
            for name in ("master-grpc", "volume-grpc", "filer", "filer-grpc", "s3", "s3-grpc"):
                for port in self._ports:
                    pathlib.Path(f"/tmp/seaweedfs-{name}-{port}.sock").unlink(missing_ok=True)
