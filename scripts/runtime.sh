#!/usr/bin/env bash
# Run a command inside the project's runtime environment, building that environment first
# when it is missing.
#
# The TFX 1.21 stack ships wheels that need glibc >= 2.38. Where the host has that (and a
# Python 3.10-3.13), the environment is a plain virtual environment. Elsewhere (Debian 12
# has glibc 2.36) it is a Debian 13 root holding a virtual environment at /opt/venv, which
# commands enter through chroot in a private mount namespace with the checkout bind-mounted
# (recursively, with the mounts below it) at its own path, so paths read the same inside and
# out. As root, the root is made with debootstrap and entered with chroot; without root
# rights, it is made from the same packages by the host's apt and dpkg, and both build and
# entry run in a user namespace where the user is root (unshare --user --map-root-user).
# scripts/runtime-mode.sh holds the choice. All live in a cache outside the checkout, keyed
# by the requirement files: a second call reuses them, a changed lock file builds a new one.
#
# Usage: scripts/runtime.sh COMMAND [ARG...]
#        scripts/runtime.sh --print-root   (build the Debian 13 root if needed; print its path)
#        scripts/runtime.sh --print-mode   (print the mode auto picks here, and why; build nothing)
#   TFXP_CACHE     where environments are kept (default: ~/.cache/tfx-kfp-pipeline)
#   TFXP_ENV_MODE  auto (default), venv, chroot or rootless
#   TFXP_MIRROR    Debian mirror for the root (default: the host's apt source)
set -euo pipefail

project=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${TFXP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tfx-kfp-pipeline}
mode=${TFXP_ENV_MODE:-auto}
suite=trixie
reqs=("$project/requirements/runtime.in" "$project/requirements/dev.in" "$project/requirements/constraints.txt")
# Keyed by what is installed: not by comments, nor by the order of lines or which file holds them.
key=$(cat "${reqs[@]}" | grep -v -e '^[[:space:]]*#' -e '^[[:space:]]*$' | LC_ALL=C sort | sha256sum | cut -c1-12)
ca_bundle=/etc/ssl/certs/ca-certificates.crt

say() { printf '[runtime] %s\n' "$*" >&2; }
die() { printf '[runtime] error: %s\n' "$*" >&2; exit 1; }
bad_input() { printf '[runtime] error: %s\n' "$*" >&2; exit 2; }

[ $# -gt 0 ] || bad_input "usage: scripts/runtime.sh COMMAND [ARG...]  (or --print-root, --print-mode)"

keyring=${TFXP_KEYRING:-/usr/share/keyrings/debian-archive-keyring.gpg}
# shellcheck source=scripts/runtime-mode.sh
. "$project/scripts/runtime-mode.sh"

host_glibc() {
  local v
  v=$(getconf GNU_LIBC_VERSION 2>/dev/null) || return 0
  echo "${v#glibc }"
}
host_python() {
  command -v python3 >/dev/null || return 0
  python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || true
}
can_unshare_user() {
  command -v unshare >/dev/null && unshare --user --map-root-user true 2>/dev/null && echo yes || echo no
}
rootless_missing() {  # what the rootless build needs from the host, first thing missing
  local tool
  for tool in apt-get dpkg-deb tar chroot; do
    PATH=$PATH:/usr/sbin:/sbin command -v "$tool" >/dev/null || {
      echo "$tool is missing (the rootless build uses the host's apt and dpkg, as Debian and Ubuntu have them): run as root, or on a host with glibc >= 2.38"
      return
    }
  done
  [ -r "$keyring" ] || echo "Debian's archive keyring $keyring is missing: ask an admin to apt-get install debian-archive-keyring, or set TFXP_KEYRING to a copy"
}

if [ "$mode" = auto ] || [ "$1" = --print-mode ]; then
  IFS=$'\t' read -r chosen reason < <(choose_mode "$(host_glibc)" "$(host_python)" "$(id -u)" \
    "$(can_unshare_user)" "$(rootless_missing)")
  if [ "$1" = --print-mode ]; then
    printf '%s\t%s\n' "$chosen" "$reason"
    exit 0
  fi
  [ "$chosen" != none ] || die "$reason"
  mode=$chosen
  # Every call says so when it is the rootless root: it is the path people do not expect.
  [ "$mode" != rootless ] || say "$reason"
fi
case "$mode" in venv|chroot|rootless) ;; *) bad_input "TFXP_ENV_MODE must be auto, venv, chroot or rootless, not '$mode'" ;; esac

pip_install() {  # $1: python executable (inside the environment); project path visible at $project
  "$1" -m pip install --quiet --upgrade pip
  "$1" -m pip install --quiet -r "$project/requirements/runtime.in" -r "$project/requirements/dev.in" \
    -c "$project/requirements/constraints.txt"
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
if [ "$mode" = chroot ]; then
  [ "$(id -u)" = 0 ] || bad_input "TFXP_ENV_MODE=chroot needs root; without root rights, leave TFXP_ENV_MODE unset (auto) or set it to rootless"
  command -v unshare >/dev/null || die "unshare (util-linux) is missing: apt-get install util-linux"
  root=$cache/root-$key
else
  # Its own name: its files belong to the user, not to root, so the two kinds never mix.
  root=$cache/rootless-$key
fi

# Run a command in the root: private mount namespace, so nothing stays mounted afterwards.
# Without root rights, also a user namespace in which the user is root; there /proc cannot be
# mounted anew without a pid namespace of its own, so the host's is bound, as /dev is.
# The host's directories that hold users' files: every top-level directory that is not the
# operating system's own (the root has its own /etc, /usr, /var, ...), /tmp and /root included,
# and the host's /opt/* beside the root's /opt/venv. Commands run with them bound at the same
# paths, so a config, data or output path anywhere a user keeps files reads the same inside.
system_dirs=" bin boot dev etc lib lib32 lib64 libx32 lost+found opt proc run sbin sys usr var "
host_dirs() {
  local d
  for d in /*/ /opt/*/; do
    d=${d%/}
    [ -d "$d" ] && [ ! -L "$d" ] || continue
    case "$system_dirs" in *" ${d#/} "*) continue ;; esac
    [ "$d" != /opt/venv ] && echo "$d"
  done
}

in_root() {  # $1: root dir; rest: command. With bind_host=1, the host's users' directories too.
  local r=$1; shift
  local passenv=()
  local v
  for v in CI TERM PYTEST_ADDOPTS COLUMNS DOCKER_HOST $(compgen -e | grep -E '^(TFXP|KFP)_' || true); do
    [ -n "${!v:-}" ] && passenv+=("$v=${!v}")
  done
  local ns=(--mount) proc="mount -t proc proc"
  if [ "$mode" = rootless ]; then
    ns=(--user --map-root-user --mount)
    proc="mount --rbind /proc"
  fi
  local hostdirs=""
  [ "${bind_host:-0}" = 1 ] && hostdirs=$(host_dirs)
  mkdir -p "$r$project"
  unshare "${ns[@]}" --propagation private -- /bin/bash -euc '
    r=$1; project=$2; ca=$3; proc=$4; hostdirs=$5; shift 5
    PATH=$PATH:/usr/sbin:/sbin  # chroot, which an ordinary user'"'"'s PATH leaves out
    mount --rbind /dev "$r/dev"
    $proc "$r/proc"
    mount -t tmpfs -o size=8g tmpfs "$r/dev/shm" 2>/dev/null || true
    while IFS= read -r d; do  # one the user cannot read stays an empty directory, as it reads outside
      [ -n "$d" ] && mkdir -p "$r$d" && { mount --rbind "$d" "$r$d" 2>/dev/null || true; }
    done <<< "$hostdirs"
    mount --rbind "$project" "$r$project"  # recursive: mounts below the checkout (a tmpfs output/) too
    [ -f /etc/resolv.conf ] && cp -L /etc/resolv.conf "$r/etc/resolv.conf"
    if [ -n "$ca" ] && [ -f "$ca" ]; then mkdir -p "$r$(dirname "$ca")"; touch "$r$ca"; mount --bind "$ca" "$r$ca"; fi
    exec chroot "$r" "$@"
  ' _ "$r" "$project" "${bind_ca-$ca_bundle}" "$proc" "$hostdirs" /usr/bin/env -i HOME=/root LANG=C.UTF-8 \
      PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
      VIRTUAL_ENV=/opt/venv PYTHONPATH="$project" REQUESTS_CA_BUNDLE=$ca_bundle SSL_CERT_FILE=$ca_bundle TFXP_RUNTIME=root \
      "${passenv[@]}" "$@"
}

host_mirror() {  # the host's Debian mirror; on other systems (Ubuntu) Debian's own
  local m=""
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    m=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
  elif [ -f /etc/apt/sources.list ]; then
    m=$(awk '$1=="deb" && $2 ~ /debian/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list)
  fi
  echo "${m:-http://deb.debian.org/debian}"
}

# A rootless root holds directories its owner may not write (dpkg gives some mode 555); as
# root of a user namespace the owner may remove them.
rm_tree() {
  if [ "$mode" = rootless ] && [ "$(id -u)" != 0 ]; then
    unshare --user --map-root-user rm -rf "$@"
  else
    rm -rf "$@"
  fi
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
  install_venv "$tmp"
}

install_venv() {  # $1: the root being built; it becomes $root once the stack is in
  in_root "$1" /usr/bin/python3 -m venv /opt/venv
  in_root "$1" /bin/bash -euc "$(declare -f pip_install); project=$project; pip_install /opt/venv/bin/python"
  rm_tree "$root" && mv "$1" "$root"
  touch "$root/.complete"
}

# The same packages as debootstrap's minbase root (the Essential set and what the stack
# needs), without root rights: the host's apt resolves and downloads them with a state of its
# own, tar unpacks them so that the root's own dpkg can run, and that dpkg then installs them
# properly (maintainer scripts, alternatives, its database) inside the user namespace.
# mmdebstrap --mode=unshare does the same but needs newuidmap (uidmap) and /etc/subuid ranges,
# which an ordinary user on Debian 12 lacks. With only the user's own id mapped, a file cannot
# belong to another group (chown fails with EINVAL): such files are left as unpacked, and the
# maintainer scripts' chown and chgrp calls are let fail.
build_rootless() {
  local tmp=$root.tmp apt=$root.apt log=$cache/rootless-build.log
  local mirror=${TFXP_MIRROR:-$(host_mirror)}
  say "building the rootless Debian 13 runtime root in $root (once; about 5 minutes, 4 GB)"
  rm_tree "$tmp" "$apt"
  mkdir -p "$apt/lists/partial" "$apt/archives/partial" "$apt/etc/preferences.d" "$apt/etc/sources.list.d"
  : > "$apt/status"
  echo "deb [signed-by=$keyring] $mirror $suite main" > "$apt/etc/sources.list"
  local aptopt=(-q -o Dir::State="$apt" -o Dir::State::Lists="$apt/lists" -o Dir::State::status="$apt/status"
    -o Dir::Cache="$apt" -o Dir::Cache::Archives="$apt/archives" -o Dir::Etc::SourceList="$apt/etc/sources.list"
    -o Dir::Etc::SourceParts="$apt/etc/sources.list.d" -o Dir::Etc::Preferences="$apt/etc/preferences"
    -o Dir::Etc::PreferencesParts="$apt/etc/preferences.d" -o Debug::NoLocking=true
    -o APT::Architecture="$(dpkg --print-architecture)" -o APT::Install-Recommends=false)
  { apt-get "${aptopt[@]}" update \
      && apt-get "${aptopt[@]}" -y --download-only install '?essential' \
           python3 python3-venv python3-dev g++ ca-certificates; } >"$log" 2>&1 \
    || die "downloading Debian $suite's packages from $mirror failed; see $log (set TFXP_MIRROR to another mirror)"
  local debs=("$apt"/archives/*.deb) deb excl=()
  mkdir -p "$tmp/usr" "$tmp/var/lib/dpkg" "$tmp/var/cache/apt/archives"
  # merged /usr, as debootstrap makes it
  for d in bin sbin lib lib64; do mkdir -p "$tmp/usr/$d"; ln -s "usr/$d" "$tmp/$d"; done
  for deb in "${debs[@]}"; do
    dpkg-deb --fsys-tarfile "$deb" | tar -x -p --keep-directory-symlink -C "$tmp" 2>>"$log" \
      || die "unpacking $deb failed; see $log"
    while read -r path; do excl+=("--path-exclude=${path#.}"); done \
      < <(dpkg-deb -c "$deb" | awk '$2 != "root/root" {print $6}')
  done
  mkdir -p "$tmp/tmp" "$tmp/var/tmp" && chmod 1777 "$tmp/tmp" "$tmp/var/tmp"
  : > "$tmp/var/lib/dpkg/status"
  mv "${debs[@]}" "$tmp/var/cache/apt/archives/"
  local shim=/var/cache/apt/chown-shim
  mkdir -p "$tmp$shim"
  for c in chown chgrp; do
    printf '#!/bin/sh\n/usr/bin/%s "$@" 2>/dev/null || true\n' "$c" > "$tmp$shim/$c"
    chmod +x "$tmp$shim/$c"
  done
  # without the host's CA bundle bound over the root's: ca-certificates writes its own there
  bind_ca="" in_root "$tmp" /bin/bash -c 'cd /var/cache/apt/archives && PATH=$1:$PATH DEBIAN_FRONTEND=noninteractive \
      dpkg --force-depends "${@:2}" --install ./*.deb' _ "$shim" "${excl[@]}" >>"$log" 2>&1 \
    || die "installing Debian $suite's packages in the rootless root failed; see $log"
  rm -rf "$tmp$shim" "$tmp"/var/cache/apt/archives/*.deb "$apt"
  # apt inside the root reads the same mirror
  echo "deb $mirror $suite main" > "$tmp/etc/apt/sources.list"
  install_venv "$tmp"
}

if [ ! -e "$root/.complete" ]; then
  flock 9
  if [ ! -e "$root/.complete" ]; then
    if [ "$mode" = rootless ]; then build_rootless; else build_root; fi
  fi
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

# The command starts where it was called from, so relative paths read as they do outside, unless
# that directory is one of the operating system's own that the root replaces.
cwd=$PWD
seen=no
while IFS= read -r d; do
  case "$cwd" in "$d"|"$d"/*) seen=yes ;; esac
done < <(echo "$project"; host_dirs)
if [ "$seen" = no ]; then
  say "$cwd is the runtime root's own directory, not the host's: running from $project (relative paths read from there)"
  cwd=$project
fi
bind_host=1 in_root "$root" /bin/bash -c 'cd "$1" && shift && exec "$@"' _ "$cwd" "$@"
