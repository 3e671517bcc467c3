#!/usr/bin/env bash
# The rootless path, built for real (minutes, network, 4 GB): scripts/runtime.sh run by a user
# without root rights on a host without glibc 2.38 (Debian 12) must say in one line that it
# uses a rootless Debian 13 root, build it under that user's ~/.cache, run the TFX stack and
# `tfxp` in it with the checkout at its own path (mounts below it included), and reuse it on
# the next call. Run on the host. As root it makes (or reuses) the user tfxptest
# (TFXP_TEST_USER) and runs as that user on a copy of the checkout in their home, whose cache it
# removes afterwards; as an ordinary user it runs on this checkout with a cache of its own under
# ~/.cache. TFXP_KEEP_SETUP=1 keeps the root. `make test-setup` runs it.
set -euo pipefail

project=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "[rootless test] $*" >&2; }

. "$project/scripts/runtime-mode.sh"
glibc=$(getconf GNU_LIBC_VERSION | awk '{print $2}')
if version_at_least "$glibc" 2.38; then
  echo "skipped: this host has glibc $glibc >= 2.38, where the runtime is a plain venv (tests/setup/test_venv_path.py)"
  exit 0
fi
mkdir -p "$project/build"

mnt=""
cleanup() {
  [ -z "$mnt" ] || { umount "$mnt" 2>/dev/null || true; rmdir "$mnt" 2>/dev/null || true; }
  if [ -z "${TFXP_KEEP_SETUP:-}" ] && [ -n "${cache:-}" ]; then
    as_user unshare --user --map-root-user rm -rf "$cache" || true
  fi
  [ "$(id -u)" != 0 ] || [ -z "${checkout:-}" ] || rm -rf "$checkout"
}
trap cleanup EXIT

if [ "$(id -u)" = 0 ]; then
  user=${TFXP_TEST_USER:-tfxptest}
  id "$user" >/dev/null 2>&1 || { step "making the user $user"; useradd -m "$user"; }
  home=$(getent passwd "$user" | cut -d: -f6)
  checkout=$home/checkout
  as_user() { runuser -u "$user" -- env HOME="$home" PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 "$@"; }
  step "copying the checkout to $checkout"
  rm -rf "$checkout" && mkdir -p "$checkout"
  git -C "$project" ls-files -co --exclude-standard -z | tar -C "$project" --null -T - -c | tar -x -C "$checkout"
  chown -R "$user:" "$checkout"
  cache=$home/.cache/tfx-kfp-pipeline  # the default: the user's own ~/.cache
  run_env=()
else
  checkout=$project
  home=$HOME
  as_user() { "$@"; }
  cache=$(mktemp -d "$home/.cache/tfxp-setup-test.XXXXXX")
  run_env=(TFXP_CACHE="$cache")
fi

probe='import sys, tfx; print(tfx.__version__, sys.prefix, open("/etc/os-release").read().count("trixie") > 0)'
start=$SECONDS
step "first call: builds the root"
as_user env "${run_env[@]}" "$checkout/scripts/runtime.sh" python -c "$probe" >"$project/build/rootless-1.out" 2>"$project/build/rootless-1.err" \
  || { cat "$project/build/rootless-1.err" >&2; fail "the first call failed"; }
first=$((SECONDS - start))
read -r version prefix trixie < "$project/build/rootless-1.out"
[ "$version" = 1.21.0 ] || fail "tfx $version, not 1.21.0"
[ "$prefix" = /opt/venv ] || fail "python ran from $prefix, not the root's /opt/venv"
[ "$trixie" = True ] || fail "the command did not run in the Debian 13 root"
grep -qx '\[runtime\] no root rights: using a rootless Debian 13 root (unshare); .*' "$project/build/rootless-1.err" \
  || fail "no line saying the rootless root is used: $(cat "$project/build/rootless-1.err")"
root=$(ls -d "$cache"/rootless-*[0-9a-f] 2>/dev/null) || fail "no rootless root under $cache"
[ -e "$root/.complete" ] || fail "$root is not complete"
[ "$(stat -c %U "$root/opt/venv/bin/python3")" = "$(as_user id -un)" ] || fail "the root's files are not the user's"

step "first call done in ${first} s; second call: reuses it; tfxp, the checkout and a mount below it, the caller's directory, /proc, TLS"
as_user mkdir -p "$checkout/build"
if [ "$(id -u)" = 0 ]; then
  mnt=$checkout/build/rootless-tmpfs
  as_user mkdir -p "$mnt" && mount -t tmpfs -o size=1m,uid="$(id -u "$user")" tmpfs "$mnt"
fi
start=$SECONDS
# Called from the user's home, outside the checkout: the command starts there (the host's users'
# directories are bound at their own paths in the root).
(cd "$home" && as_user env "${run_env[@]}" "$checkout/scripts/runtime.sh" bash -c '
  set -e
  tfxp --help | grep -q "usage: tfxp"
  [ "$(pwd)" = "$3" ]
  echo written > "$1/build/rootless-probe"
  [ -z "$2" ] || [ "$(stat -f -c %T "$2")" = tmpfs ]
  [ -r /proc/self/status ] && [ -c /dev/null ] && [ -c /dev/urandom ]
  python -c "import urllib.request; urllib.request.urlopen(\"https://pypi.org/simple/tfx/\", timeout=30).read(100)"
  id -u
' _ "$checkout" "$mnt" "$home") >"$project/build/rootless-2.out" 2>"$project/build/rootless-2.err" \
  || { cat "$project/build/rootless-2.out" "$project/build/rootless-2.err" >&2; fail "the second call failed"; }
second=$((SECONDS - start))
[ "$(tail -1 "$project/build/rootless-2.out")" = 0 ] || fail "inside, the user is not root of the namespace"
[ "$(grep -c '^\[runtime\]' "$project/build/rootless-2.err")" = 1 ] \
  || fail "the second call said more than the one mode line: $(cat "$project/build/rootless-2.err")"
[ "$(cat "$checkout/build/rootless-probe")" = written ] || fail "a file written inside is not in the checkout"
[ "$(stat -c %U "$checkout/build/rootless-probe")" = "$(as_user id -un)" ] || fail "a file written inside is not the user's"
rm -f "$checkout/build/rootless-probe"

step "second call done in ${second} s; the pipeline on the bundled sample (tfxp run)"
out=$checkout/build/rootless-run
start=$SECONDS
(cd "$checkout" && as_user env "${run_env[@]}" "$checkout/scripts/runtime.sh" tfxp run --set output_dir="$out") \
  >"$project/build/rootless-3.out" 2>&1 || { tail -20 "$project/build/rootless-3.out" >&2; fail "tfxp run failed"; }
run=$((SECONDS - start))
ls "$out"/serving/*/[0-9]*/saved_model.pb >/dev/null 2>&1 || fail "tfxp run pushed no model under $out/serving"
as_user unshare --user --map-root-user rm -rf "$out"
echo "ok: rootless root built and first command ${first} s, second call ${second} s, tfxp run ${run} s ($root)"
