"""SeaweedFS, the object store KFP's launcher writes to in argo_runner's tier: credentials checked, objects kept.

The `weed` binary comes from scripts/kfp-binaries.sh (TFXP_KFP_GO, as for the other tests of
tests/kfp_backend/); the signing and the start-up failure need nothing built. That the launcher's
own uploads land there is test_kfp_go_driver.py's.
"""

from __future__ import annotations

import datetime
import os
import pathlib

import pytest

from tests.kfp_backend.seaweedfs import SeaweedFS, sign

NEEDS_WEED = pytest.mark.skipif(
    not os.environ.get("TFXP_KFP_GO"),
    reason="needs SeaweedFS's weed: `make test` or `make test-kfp-backend` builds it and sets TFXP_KFP_GO",
)


def test_signing_gives_awss_own_example_signatures():
    # The S3 API reference's Signature V4 examples (sig-v4-header-based-auth.html): GET Bucket
    # (List Objects) and GET Bucket Lifecycle, both signing host, x-amz-content-sha256, x-amz-date.
    keys = ("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    now = datetime.datetime(2013, 5, 24, tzinfo=datetime.timezone.utc)
    listing = sign("GET", "https://examplebucket.s3.amazonaws.com/?max-keys=2&prefix=J", *keys, now=now)
    assert listing["authorization"].endswith("34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7")
    lifecycle = sign("GET", "https://examplebucket.s3.amazonaws.com/?lifecycle", *keys, now=now)
    assert lifecycle["authorization"].endswith("fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543")
    assert lifecycle["authorization"].startswith(
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;x-amz-content-sha256;x-amz-date, "
    )


def test_a_server_that_does_not_start_is_one_line_naming_its_log(tmp_path):
    weed = tmp_path / "weed"
    weed.write_text("#!/bin/sh\necho 'F1206 cannot bind' >&2\nexit 3\n")
    weed.chmod(0o755)
    with pytest.raises(RuntimeError) as failed:
        SeaweedFS(weed, tmp_path, "mlpipeline", "ak", "sk").start(timeout=30)
    assert str(failed.value) == f"SeaweedFS exited with code 3 on start; log: {tmp_path / 'seaweedfs.log'}"
    assert "cannot bind" in (tmp_path / "seaweedfs.log").read_text()


@pytest.fixture(scope="module")
def seaweedfs(tmp_path_factory):
    server = SeaweedFS(
        pathlib.Path(os.environ["TFXP_KFP_GO"]) / "weed", tmp_path_factory.mktemp("seaweedfs"), "mlpipeline", "ak", "sk"
    )
    yield server.start()
    server.stop()


@pytest.mark.slow  # about 15 s with the other: SeaweedFS's start, first write and stop
@NEEDS_WEED
def test_only_the_identitys_keys_are_let_in(seaweedfs):
    assert seaweedfs.request("GET", "/mlpipeline", {"list-type": "2"})[0] == 200
    for credentials, code in [((), b"AccessDenied"), (("ak", "not-sk"), b"SignatureDoesNotMatch")]:
        status, body = seaweedfs.request("GET", "/mlpipeline", {"list-type": "2"}, credentials=credentials)
        assert status == 403 and code in body, (credentials, status, body)
    status, body = seaweedfs.request("PUT", "/mlpipeline/x", body=b"x", credentials=("someone", "sk"))
    assert status == 403 and b"InvalidAccessKeyId" in body
    assert seaweedfs.objects("x") == []


@pytest.mark.slow
@NEEDS_WEED
def test_objects_are_kept_listed_page_by_page_and_read_back(seaweedfs):
    keys = [f"run/Split-{split}/data_tfrecord-0000{n}-of-00002.gz" for split in ("train", "eval") for n in (0, 1)]
    for key in keys + ["other/a b+c.txt"]:
        assert seaweedfs.request("PUT", f"/mlpipeline/{key}", body=key.encode())[0] == 200
    assert sorted(seaweedfs.objects("run/", page=3)) == sorted(k[len("run/") :] for k in keys)
    assert seaweedfs.read_object("other/a b+c.txt") == b"other/a b+c.txt"
    # Kept by SeaweedFS's volume server, in files of the bucket's collection under its directory.
    assert any(
        p.name.startswith("mlpipeline_") and p.suffix == ".dat" for p in (seaweedfs.work / "seaweedfs").iterdir()
    )
