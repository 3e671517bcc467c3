#!/usr/bin/env bash
# Run a command inside the project's runtime environment, building that environment first
# when it is missing.
#
# The TFX 1.21 stack ships wheels that need glibc >= 2.38. Where the host has that (and a
# Python 3.10-3.13), the environment is a plain virtual environment. Elsewhere (Debian 12
# has glibc 2.36) it is a Debian 13 root made with debootstrap, holding a virtual
# environment at /opt/venv, which commands enter through chroot in a private mount
# namespace with the checkout bind-mounted (recursively, with the mounts below it) at its
# own path, so paths read the same inside and out. Both live in a cache outside the
# checkout, keyed by the requirement files: a second call reuses them, a changed lock file
# builds a new one.
#
# Usage: scripts/runtime.sh COMMAND [ARG...]
#        scripts/runtime.sh --print-root   (build the Debian 13 root if needed; print its path)
#   TFXP_CACHE     where environments are kept (default: ~/.cache/tfx-kfp-pipeline)
#   TFXP_ENV_MODE  auto (default), venv or chroot
#   TFXP_MIRROR    Debian mirror for the root (default: the host's apt source)
set -euo pipefail

project=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${TFXP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tfx-kfp-pipeline}
mode=${TFXP_ENV_MODE:-auto}
suite=trixie
reqs=("$project/requirements/runtime.in" "$project/requirements/constraints.txt")
# Keyed by what is installed, not by comments in the requirement files.
key=$(cat "${reqs[@]}" | grep -v -e '^[[:space:]]*#' -e '^[[:space:]]*$' | sha256sum | cut -c1-12)
ca_bundle=/etc/ssl/certs/ca-certificates.crt

say() { printf '[runtime] %s\n' "$*" >&2; }
die() { printf '[runtime] error: %s\n' "$*" >&2; exit 1; }

[ $# -gt 0 ] || die "usage: scripts/runtime.sh COMMAND [ARG...]  (or --print-root)"

host_can_venv() {
  command -v python3 >/dev/null || return 1
  python3 - <<'PY' || return 1
import platform, sys
libc, version = platform.libc_ver()
ok_glibc = libc == "glibc" and tuple(int(p) for p in version.split(".")[:2]) >= (2, 38)
sys.exit(0 if ok_glibc and (3, 10) <= sys.version_info[:2] <= (3, 13) else 1)
PY
}

if [ "$mode" = auto ]; then
  if host_can_venv; then mode=venv; else mode=chroot; fi
fi
case "$mode" in venv|chroot) ;; *) die "TFXP_ENV_MODE must be auto, venv or chroot, not '$mode'" ;; esac

pip_install() {  # $1: python executable (inside the environment); project path visible at $project
  "$1" -m pip install --quiet --upgrade pip
  "$1" -m pip install --quiet -r "$project/requirements/runtime.in" -c "$project/requirements/constraints.txt"
}

# Keep only one build at a time per cache.
mkdir -p "$cache"
exec 9>"$cache/.lock"
# which checkout, and which setup.py (entry points), the environment has installed
installed="$project $(sha256sum < "$project/setup.py" | cut -c1-12)"

# ---------------------------------------------------------------- plain virtual environment
if [ "$mode" = venv ]; then
  env_dir=$cache/venv-$key
  if [ ! -e "$env_dir/.complete" ]; then
    flock 9
    if [ ! -e "$env_dir/.complete" ]; then
      say "building the virtual environment in $env_dir (once; about 3 minutes)"
      # A venv cannot be moved, so it is built in place; .complete marks it usable.
      rm -rf "$env_dir"
      python3 -m venv "$env_dir"
      pip_install "$env_dir/bin/python"
      touch "$env_dir/.complete"
    fi
    flock -u 9
  fi
  if [ "$(cat "$env_dir/.project" 2>/dev/null)" != "$installed" ]; then
    "$env_dir/bin/python" -m pip install --quiet --no-deps --no-build-isolation -e "$project" \
      >"$cache/install-project.log" 2>&1 || die "installing the project failed; see $cache/install-project.log"
    echo "$installed" > "$env_dir/.project"
  fi
  export PATH="$env_dir/bin:$PATH" VIRTUAL_ENV=$env_dir PYTHONPATH="$project${PYTHONPATH:+:$PYTHONPATH}"
  exec "$@"
fi

# ---------------------------------------------------------------- Debian 13 root
[ "$(id -u)" = 0 ] || die "the TFX stack needs glibc >= 2.38, which this host lacks, and building the Debian 13 root that replaces it needs root. Run as root, or on a host with glibc >= 2.38 and Python 3.10-3.13."
command -v unshare >/dev/null || die "unshare (util-linux) is missing: apt-get install util-linux"

root=$cache/root-$key

# Run a command in the root: private mount namespace, so nothing stays mounted afterwards.
in_root() {  # $1: root dir; rest: command
  local r=$1; shift
  local passenv=()
  local v
  for v in CI TERM PYTEST_ADDOPTS COLUMNS DOCKER_HOST $(compgen -e | grep -E '^(TFXP|KFP)_' || true); do
    [ -n "${!v:-}" ] && passenv+=("$v=${!v}")
  done
  mkdir -p "$r$project"
  unshare --mount --propagation private -- /bin/bash -euc '
    r=$1; project=$2; ca=$3; shift 3
    mount --rbind /dev "$r/dev"
    mount -t proc proc "$r/proc"
    mount -t tmpfs -o size=8g tmpfs "$r/dev/shm" 2>/dev/null || true
    mount --rbind "$project" "$r$project"  # recursive: mounts below the checkout (a tmpfs output/) too
    [ -f /etc/resolv.conf ] && cp -L /etc/resolv.conf "$r/etc/resolv.conf"
    if [ -f "$ca" ]; then mkdir -p "$r$(dirname "$ca")"; touch "$r$ca"; mount --bind "$ca" "$r$ca"; fi
    exec chroot "$r" "$@"
  ' _ "$r" "$project" "$ca_bundle" /usr/bin/env -i HOME=/root LANG=C.UTF-8 \
      PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
      VIRTUAL_ENV=/opt/venv PYTHONPATH="$project" REQUESTS_CA_BUNDLE=$ca_bundle SSL_CERT_FILE=$ca_bundle \
      "${passenv[@]}" "$@"
}

host_mirror() {
  local m=""
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    m=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
  elif [ -f /etc/apt/sources.list ]; then
    m=$(awk '$1=="deb" {print $2; exit}' /etc/apt/sources.list)
  fi
  echo "${m:-http://deb.debian.org/debian}"
}

build_root() {
  local tmp=$root.tmp
  say "building the Debian 13 runtime root in $root (once; about 5 minutes, 4 GB)"
  if ! command -v debootstrap >/dev/null; then
    say "installing debootstrap"
    apt-get update -qq && apt-get install -y -qq debootstrap >/dev/null
  fi
  rm -rf "$tmp"
  local mirror=${TFXP_MIRROR:-$(host_mirror)}
  debootstrap --variant=minbase \
    --include=python3,python3-venv,python3-dev,g++,ca-certificates \
    "$suite" "$tmp" "$mirror" >"$cache/debootstrap.log" 2>&1 \
    || die "debootstrap $suite from $mirror failed; see $cache/debootstrap.log (set TFXP_MIRROR to another mirror)"
  in_root "$tmp" /usr/bin/python3 -m venv /opt/venv
  in_root "$tmp" /bin/bash -euc "$(declare -f pip_install); project=$project; pip_install /opt/venv/bin/python"
  rm -rf "$root" && mv "$tmp" "$root"
  touch "$root/.complete"
}

if [ ! -e "$root/.complete" ]; then
  flock 9
  [ -e "$root/.complete" ] || build_root
  flock -u 9
fi
if [ "$1" = --print-root ]; then
  echo "$root"
  exit 0
fi

# The project is installed editable (for the tfxp command and its metadata); a different
# checkout, or a changed setup.py, re-links it in seconds, installing no dependency again. The
# checkout also comes first on PYTHONPATH, so checkouts that share one environment each run
# their own code.
if [ "$(cat "$root/.project" 2>/dev/null)" != "$installed" ]; then
  flock 9
  in_root "$root" /opt/venv/bin/python -m pip install --quiet --no-deps --no-build-isolation -e "$project" \
    >"$cache/install-project.log" 2>&1 || die "installing the project failed; see $cache/install-project.log"
  echo "$installed" > "$root/.project"
  flock -u 9
fi

cwd=$PWD
case "$cwd" in "$project"|"$project"/*) ;; *) cwd=$project ;; esac
in_root "$root" /bin/bash -c 'cd "$1" && shift && exec "$@"' _ "$cwd" "$@"
