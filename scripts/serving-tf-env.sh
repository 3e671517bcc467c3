#!/usr/bin/env bash
# Run a command with the TensorFlow of the TF Serving image the project deploys, in a side
# virtual environment built once and reused.
#
# The image is serving/launch.py's OFFICIAL_IMAGE (the one kubernetes/ runs). TF Serving X.Y.Z
# builds against TensorFlow X.Y.Z (its tensorflow-serving-api X.Y.Z requires tensorflow>=X.Y.Z),
# so the environment holds tensorflow-cpu==X.Y.Z (tensorflow where no -cpu wheel exists for
# this Python) and tensorflow-serving-api==X.Y.Z, with the checkout on PYTHONPATH. Run it
# inside the project runtime, where the tests run:
#
#   scripts/runtime.sh scripts/serving-tf-env.sh python -m components.serving_check.op_check DIR
#
# The environment is keyed by TensorFlow and Python versions; .complete is written last, so an
# interrupted build is started over on the next call.
#
# Usage: scripts/serving-tf-env.sh COMMAND [ARG...]
#        scripts/serving-tf-env.sh --print-version   (the TensorFlow version it uses)
#   TFXP_SERVING_TF_CACHE    where environments are kept (default: ~/.cache/tfxp-serving-tf)
#   TFXP_SERVING_TF_VERSION  another TensorFlow version than the image's
#   TFXP_SERVING_PYTHON      the interpreter to build with (default: python3)
set -euo pipefail

project=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${TFXP_SERVING_TF_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tfxp-serving-tf}
python=${TFXP_SERVING_PYTHON:-python3}

say() { printf '[serving-tf] %s\n' "$*" >&2; }
die() { printf '[serving-tf] error: %s\n' "$*" >&2; exit "${2:-1}"; }

[ $# -gt 0 ] || die "usage: scripts/serving-tf-env.sh COMMAND [ARG...]  (or --print-version)"

image=$(sed -n 's/^OFFICIAL_IMAGE = "\(.*\)"$/\1/p' "$project/serving/launch.py")
image_version=${image##*:}
[[ $image_version =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "no pinned version in OFFICIAL_IMAGE ('$image') of serving/launch.py"
version=${TFXP_SERVING_TF_VERSION:-$image_version}
if [ "$1" = --print-version ]; then
  echo "$version"
  exit 0
fi

command -v "$python" >/dev/null || die "$python not found (set TFXP_SERVING_PYTHON)"
py=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
env_dir=$cache/tf-$version-py$py

build() {
  local start size tf_dist
  start=$(date +%s)
  say "building $env_dir: TensorFlow $version for Python $py (once)"
  rm -rf "$env_dir"
  "$python" -m venv "$env_dir"
  local pip=("$env_dir/bin/python" -m pip --disable-pip-version-check)
  "${pip[@]}" install --quiet --upgrade pip >"$env_dir.log" 2>&1 || die "upgrading pip failed; see $env_dir.log" 3
  # tensorflow-cpu leaves out the CUDA builds; only where no wheel of it exists for this
  # Python is the full tensorflow package used.
  if "${pip[@]}" download --quiet --no-deps --only-binary=:all: -d "$env_dir/probe" \
       "tensorflow-cpu==$version" >>"$env_dir.log" 2>&1; then
    tf_dist=tensorflow-cpu
  else
    tf_dist=tensorflow
  fi
  rm -rf "$env_dir/probe"
  "${pip[@]}" install --quiet "$tf_dist==$version" >>"$env_dir.log" 2>&1 \
    || die "installing $tf_dist==$version failed; see $env_dir.log" 3
  # tensorflow-serving-api requires the package named tensorflow, which would install a second
  # TensorFlow over tensorflow-cpu; its other requirements come from the TensorFlow install.
  "${pip[@]}" install --quiet --no-deps "tensorflow-serving-api==$version" grpcio >>"$env_dir.log" 2>&1 \
    || die "installing tensorflow-serving-api==$version failed; see $env_dir.log" 3
  "$env_dir/bin/python" -c 'import tensorflow, tensorflow_serving.apis.predict_pb2' >>"$env_dir.log" 2>&1 \
    || die "the new environment does not import tensorflow and tensorflow_serving; see $env_dir.log" 3
  size=$(du -sh "$env_dir" | cut -f1)
  echo "$tf_dist==$version tensorflow-serving-api==$version built in $(( $(date +%s) - start ))s, $size" \
    > "$env_dir/.complete"
  say "$(cat "$env_dir/.complete")"
}

if [ ! -e "$env_dir/.complete" ]; then
  mkdir -p "$cache"
  exec 9>"$cache/.lock"
  flock 9
  [ -e "$env_dir/.complete" ] || build
  flock -u 9
  exec 9>&-
fi

export PATH="$env_dir/bin:$PATH" VIRTUAL_ENV=$env_dir PYTHONPATH=$project PYTHONNOUSERSITE=1
exec "$@"
