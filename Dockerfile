# The image every Kubeflow step runs in: the same pinned stack as the local runtime
# (requirements/runtime.in + requirements/constraints.txt) plus this project, installed; not the
# test and lint tools of requirements/dev.in.
#
# It runs as a fixed non-root user, uid and gid 10001 (the uid kubernetes/monitoring/cronjob.yaml
# and the compiled pipeline's security context name: docs/kubeflow.md, "Pod security"). The
# virtual environment and the code stay root-owned, read-only to it; HOME (/home/tfxp) and
# /tmp are its writable directories, which a pod with a read-only root file system mounts as
# emptyDir volumes.
#
# BASE_IMAGE is any Debian 13 (trixie) image with Python 3.13. Elsewhere the public
# python:3.13-slim-trixie serves; where no registry can be reached, import the runtime
# root that scripts/runtime.sh builds and pass it here (see README, "Container image").
# checkov:skip=CKV_DOCKER_2: the image runs pipeline steps and CLI commands, not a long-lived server; a pod's probes watch `tfxp serve`
# checkov:skip=CKV_DOCKER_7: the base is a build argument; its default carries a version tag (3.13-slim-trixie)
ARG BASE_IMAGE=python:3.13-slim-trixie
FROM ${BASE_IMAGE}

ENV DEBIAN_FRONTEND=noninteractive \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    VIRTUAL_ENV=/opt/venv

# pyfarmhash (pulled in by the TFX stack) has no cp313 wheel and compiles: it needs g++ and
# the Python headers (python:* images carry the headers; Debian's python3 needs python3-dev).
# LightGBM's wheel links GCC's OpenMP runtime, libgomp.so.1 (libgomp1).
RUN missing=""; \
    command -v g++ >/dev/null || missing="$missing g++"; \
    ldconfig -p | grep -q 'libgomp\.so\.1' || missing="$missing libgomp1"; \
    python3 -c 'import os, sysconfig; assert os.path.exists(sysconfig.get_paths()["include"] + "/Python.h")' \
      2>/dev/null || missing="$missing python3-dev python3-venv"; \
    if [ -n "$missing" ]; then \
      apt-get update && apt-get install -y --no-install-recommends $missing && rm -rf /var/lib/apt/lists/*; \
    fi

WORKDIR /src
COPY requirements/ requirements/
RUN python3 -m venv /opt/venv \
    && pip install --upgrade pip \
    && pip install -r requirements/runtime.in -c requirements/constraints.txt

COPY setup.py ./
COPY contracts/ contracts/
COPY pipeline/ pipeline/
COPY components/ components/
COPY models/ models/
COPY ops/ ops/
COPY serving/ serving/
COPY tfxp/ tfxp/
RUN pip install --no-deps . && python -c "import pipeline.pipeline, models.model, components.anomalies_gate"

# The user is written into /etc/passwd and /etc/group directly: an imported base image need not
# have useradd. /tmp keeps its sticky, world-writable mode. /gcs, /minio and /s3 are where KFP's
# launcher stages a step's artifacts before it uploads them (the local path of each URI); they
# start empty, whatever the base image held there.
RUN echo "tfxp:x:10001:10001:tfxp:/home/tfxp:/usr/sbin/nologin" >> /etc/passwd \
    && echo "tfxp:x:10001:" >> /etc/group \
    && rm -rf /gcs /minio /s3 \
    && mkdir -p /home/tfxp /gcs /minio /s3 \
    && chown 10001:10001 /home/tfxp /gcs /minio /s3 \
    && chmod 0700 /home/tfxp \
    && chmod 1777 /tmp
ENV HOME=/home/tfxp \
    TMPDIR=/tmp
USER 10001:10001
WORKDIR /home/tfxp
