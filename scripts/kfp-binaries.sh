#!/usr/bin/env bash
# Build Kubeflow Pipelines' own Go binaries (the backend `compiler`, the `driver` and
# `launcher-v2`, the `apiserver`, plus our `run-workflow`, which calls KFP's API-server code)
# from the Go module proxy, static as KFP's Dockerfiles build the driver and launcher
# (CGO_ENABLED=0, -tags netgo, -extldflags -static; the API server with cgo, below), into
# ~/.cache/tfx-kfp-pipeline/kfp-go-<version>-<key>/. The key is made of the wrapper module
# (scripts/kfp-go/<version>/: go.mod, go.sum, our Go source), the Go and C compilers' versions
# and the build flags, so a second call reuses the binaries. KFP's root go.mod has replace
# directives, which `go install pkg@v` refuses; the wrapper module requires KFP at the
# release's pseudo-version and repeats them, and names KFP's commands in `tool` directives so
# that its go.sum holds every module they need. Beside them, the object store KFP's launcher
# writes to: SeaweedFS's `weed` (scripts/kfp-go/seaweedfs/, a module of its own), built once
# into ~/.cache/tfx-kfp-pipeline/seaweedfs-<key>/ (the key: its module, the Go version, the
# flags) and linked into each kfp-go directory, so that a new KFP key does not rebuild it (it
# takes far longer than KFP's binaries). With --kube, the Kubernetes API the binaries call as
# well: `kube-apiserver` (k8s.io/kubernetes/cmd/kube-apiserver) and `etcd`
# (go.etcd.io/etcd/server/v3's etcdmain), the module scripts/kfp-go/kube/, built the same way
# into ~/.cache/tfx-kfp-pipeline/kube-<key>/ and linked in beside `weed`; a kfp-go directory
# then also holds, under crds/, the CustomResourceDefinitions KFP's API server creates objects
# of, copied from the Go module cache (Argo's Workflow at the version KFP's go.mod requires,
# KFP's ScheduledWorkflow from KFP's own module).
#
# Usage: scripts/kfp-binaries.sh [--kube] [VERSION...]   build (default 2.0.5); prints each binary directory
#        scripts/kfp-binaries.sh --check VERSION...   ask the proxy whether it serves each release
#                                                     (one line each; exit 0 either way)
#   TFXP_CACHE  where builds are kept (default: ~/.cache/tfx-kfp-pipeline)
#   The KFP releases and their pseudo-versions: scripts/kfp-go/versions.tsv; a wrapper module
#   exists for those the proxy serves with every dependency (scripts/kfp-go/<version>/).
# A missing Go or C compiler (the API server's cgo), a refusal of the proxy or a failed build: one
# line naming the module and version, exit 2, nothing left in the cache (the full go output is
# kept in a log whose path is printed).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
wrappers=$here/kfp-go
cache=${TFXP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tfx-kfp-pipeline}
kfp_module=github.com/kubeflow/pipelines
cmds=(compiler driver launcher-v2 apiserver)
# Ours, in the wrapper module: the Workflow KFP's API server makes for a run (run-workflow/main.go)
# and a stand-in for its TaskService, the cache (task-service/main.go).
own_cmds=(run-workflow task-service)
# Modules of their own beside the KFP wrappers (so that their dependencies do not move KFP's),
# each building the packages its go.mod's `tool` directives name and its own commands (a
# directory with a main.go): SeaweedFS's `weed`, the launcher's S3 server; with --kube,
# `kube-apiserver` and `etcd` (scripts/kfp-go/kube/).
own_modules=(seaweedfs)
# What each own binary answers with its version: checks that it runs, kept in BUILD_INFO.
version_args() { [ "$1" = weed ] && echo version || echo --version; }
# As backend/Dockerfile.driver and Dockerfile.launcher build them (the compiler has no Dockerfile).
build_flags=(-tags netgo -ldflags '-extldflags "-static"')
# KFP's backend/Dockerfile builds the API server with cgo (its storage package uses go-sqlite3's
# error types, which a CGO_ENABLED=0 build lacks: "undefined: sqlite3.Error"), linked dynamically;
# here it is linked statically too (osusergo: no NSS), so that it runs in any image.
apiserver_flags=(-tags netgo,osusergo -ldflags '-extldflags "-static"')

say() { printf '[kfp-go] %s\n' "$*" >&2; }
fail() { printf '[kfp-go] error: %s\n' "$*" >&2; exit 2; }

need_go() { command -v go >/dev/null || fail "no Go toolchain on PATH, needed to build KFP $1: install Go >= 1.26 and retry"; }

pseudo_version() {  # $1: KFP release -> its pseudo-version, from versions.tsv
  awk -F'\t' -v v="$1" '$1 == v { print $2 }' "$wrappers/versions.tsv"
}
known_versions() { awk -F'\t' '!/^#/ { printf "%s ", $1 }' "$wrappers/versions.tsv"; }

refusal() {  # $1: go's output file -> "MODULE@VERSION: the proxy's words", or empty
  # go reports a refused module as `go: MODULE@VERSION: reading URL: 403 Forbidden` followed by
  # `server response: ...`; a build error has neither.
  local where words
  where=$(grep -m1 -oE '[a-zA-Z0-9./_-]+@v[^: ]+: reading https?://[^ ]+: [0-9]{3} [A-Za-z ]+' "$1" || true)
  [ -n "$where" ] || return 0
  words=$(grep -m1 -oE 'server response: .*' "$1" | sed 's/^server response: *//' || true)
  printf '%s (%s)' "$(sed -E 's#: reading https?://[^ ]+: #: #' <<<"$where")" "${words:-no message}"
}

check() {  # $1: KFP release: one line, served or the refusal
  local v=$1 pv log
  pv=$(pseudo_version "$v")
  [ -n "$pv" ] || fail "unknown KFP release '$v': scripts/kfp-go/versions.tsv names $(known_versions)"
  need_go "$v"
  log=$(mktemp)
  # Outside any module, so that only the proxy is asked.
  if (cd / && GOFLAGS=-mod=mod go mod download -json "$kfp_module@$pv") >"$log" 2>&1; then
    echo "KFP $v ($kfp_module@$pv): served"
  else
    # `go mod download -json` puts go's message in the JSON's Error field, lines joined by "\n\t".
    grep -m1 -o '"Error": "[^"]*"' "$log" | sed -E 's/^"Error": "//; s/"$//; s/\\n\\t/\n/g' >"$log.err" || true
    local why
    why=$(refusal "$log.err")
    [ -n "$why" ] || why=$(head -c 300 "$log.err" | tr '\n' ' ')  # not a refusal: go's own words
    echo "KFP $v: not served by the Go module proxy: $why"
    rm -f "$log.err"
  fi
  rm -f "$log"
}

module_packages() {  # $1: an own module -> the packages it builds, one a line
  awk '$1 == "tool" && NF == 2 { print $2 }' "$wrappers/$1/go.mod"
  local d
  for d in "$wrappers/$1"/*/; do [ -f "$d/main.go" ] && echo "./$(basename "$d")"; done
  return 0
}

module_of() {  # $1: an own module, $2: a package it builds -> MODULE@VERSION of the requirement holding it
  # Read from go.mod, not asked of go, so that a refusal can still name it. One of our commands
  # (./DIR) is named by the module its main.go calls.
  local p=$2
  [[ $p == ./* ]] && p=$(grep -m1 -oE '"[a-z0-9.-]+\.[a-z]+/[^"]+"' "$wrappers/$1/$p/main.go" | tr -d '"')
  awk -v p="$p" '$1 == "require" { $1 = ""; $0 = $0 }
    NF >= 2 && $2 ~ /^v/ && (p == $1 || index(p, $1 "/") == 1) && length($1) > length(best) { best = $1; version = $2 }
    END { if (best) print best "@" version }' "$wrappers/$1/go.mod"
}

module_ldflags() {  # $1: an own module -> its -ldflags
  local flags='-extldflags "-static"' k8s
  if [ "$1" = kube ]; then
    # What Kubernetes' release build stamps (hack/lib/version.sh): without it the API server
    # calls itself v0.0.0-master in --version and /version.
    k8s=$(module_of kube k8s.io/kubernetes/cmd/kube-apiserver)
    flags+=" -X k8s.io/component-base/version.gitVersion=${k8s#*@} -X k8s.io/component-base/version.gitTreeState=clean"
  fi
  echo "$flags"
}

build_module() {  # $1: one of own_modules -> the paths of its binaries, one a line, built once per key
  local m=$1 dir=$wrappers/$1 pkg name module key out tmp log start ldflags pkgs names=()
  mapfile -t pkgs < <(module_packages "$m")
  [ ${#pkgs[@]} -gt 0 ] || fail "scripts/kfp-go/$m/go.mod names no package in a one-line tool directive: add 'tool <package>'"
  for pkg in "${pkgs[@]}"; do names+=("$(basename "$pkg")"); done
  ldflags=$(module_ldflags "$m")
  # Our commands' source and flags beyond build_flags' go into the key only where a module has
  # them, so that weed's key stays what it was before there were any.
  local extra
  extra=$(cat "$dir"/*/*.go 2>/dev/null || true)
  [ "$ldflags" = "${build_flags[3]}" ] || extra+=$ldflags
  key=$( { cat "$dir/go.mod" "$dir/go.sum"; go version; go env GOOS GOARCH; printf '%s\n' "${build_flags[@]}"; [ -z "$extra" ] || printf '%s\n' "$extra"; } | sha256sum | cut -c1-12)
  out=$cache/$m-$key
  local printed
  printed() { local n; for n in "${names[@]}"; do echo "$out/$n"; done; }
  [ -f "$out/BUILD_INFO" ] && { printed; return; }
  mkdir -p "$cache"
  exec 8>"$cache/$m.lock"
  flock 8
  [ -f "$out/BUILD_INFO" ] && { printed; return; }  # built while this one waited
  tmp=$(mktemp -d "$cache/.$m-$key.XXXXXX")
  log=$cache/$m-$key.log
  trap 'rm -rf "$tmp"' EXIT  # this runs in a subshell of build(): its own trap
  : >"$log"
  for pkg in "${pkgs[@]}"; do
    name=$(basename "$pkg")
    module=$(module_of "$m" "$pkg")
    start=$SECONDS
    say "building $name from $module (many minutes on 2 cores the first time; log: $log)"
    if ! (cd "$dir" && CGO_ENABLED=0 GOOS=linux GOFLAGS=-mod=readonly \
      nice -n 10 go build -tags netgo -ldflags "$ldflags" -o "$tmp/$name" "$pkg") >>"$log" 2>&1; then
      local why
      why=$(refusal "$log")
      [ -n "$why" ] && fail "the Go module proxy refused $why, building $name from $module; log: $log"
      fail "go build of $pkg ($module) failed: $(grep -m1 -vE '^(go: downloading|#)' "$log" | cut -c1-300); log: $log"
    fi
    local version
    version=$("$tmp/$name" "$(version_args "$name")" 2>&1) || fail "the built $tmp/$name does not run ($module); log: $log"
    version=${version%%$'\n'*}
    say "built $name in $((SECONDS - start)) s ($version)"
    printf 'module %s\npackage %s\nversion %s\n' "$module" "$pkg" "$version" >>"$tmp/BUILD_INFO.part"
  done
  printf '%s\nflags CGO_ENABLED=0 -tags netgo -ldflags %s\n' "$(go version)" "$ldflags" >>"$tmp/BUILD_INFO.part"
  mv "$tmp/BUILD_INFO.part" "$tmp/BUILD_INFO"
  chmod 755 "$tmp"
  mv "$tmp" "$out"
  trap - EXIT
  printed
}

module_dir() {  # $1: a wrapper module, $2: a module it requires -> its directory in the module cache
  local dir
  dir=$(cd "$1" && GOFLAGS=-mod=readonly go mod download -json "$2" | sed -nE 's/^\t"Dir": "(.*)",?$/\1/p')
  [ -n "$dir" ] && [ -d "$dir" ] || fail "the Go module cache has no $2 of $1/go.mod after go mod download: run go mod download $2 there for the proxy's answer"
  echo "$dir"
}

copy_crds() {  # $1: KFP's wrapper, $2: the directory to fill, $3: the log
  # The CustomResourceDefinitions of what KFP's API server creates (resource_manager.go: Workflows
  # and ScheduledWorkflows), for the kube-apiserver of the tests: Argo's own at the version KFP's
  # go.mod requires, the "minimal" one that KFP's install applies (spec and status are objects
  # kept whole; Argo 3.3's "full" one, with the whole schema, is refused by kube-apiserver as
  # not structural: "items.properties[inline].type: Required value"), and KFP's.
  local argo kfp
  argo=$(module_dir "$1" github.com/argoproj/argo-workflows/v3)
  kfp=$(module_dir "$1" "$kfp_module")
  mkdir -p "$2"
  cp "$argo/manifests/base/crds/minimal/argoproj.io_workflows.yaml" "$2/workflows.argoproj.io.yaml"
  cp "$kfp/manifests/kustomize/base/pipeline/cluster-scoped/scheduled-workflow-crd.yaml" "$2/scheduledworkflows.kubeflow.org.yaml"
  chmod 644 "$2"/*.yaml  # read-only in the module cache
  printf '%s\n' "$argo" "$kfp" >"$2/FROM"
  echo "CRDs from $argo and $kfp" >>"$3"
}

build() {  # $1: KFP release
  local v=$1 pv wrapper key out tmp log c
  pv=$(pseudo_version "$v")
  [ -n "$pv" ] || fail "unknown KFP release '$v': scripts/kfp-go/versions.tsv names $(known_versions)"
  wrapper=$wrappers/$v
  if [ ! -f "$wrapper/go.mod" ]; then  # the proxy's answer today, then why there is no wrapper
    fail "$(check "$v"); no wrapper module for it under scripts/kfp-go/$v/ (docs/kubeflow.md says why)"
  fi
  need_go "$v"
  command -v cc >/dev/null || fail "no C compiler (cc) on PATH, needed to build KFP $v's apiserver (cgo): install gcc and retry"
  local m built=() paths
  for m in "${own_modules[@]}"; do
    paths=$(build_module "$m") || exit 2
    mapfile -t -O ${#built[@]} built <<<"$paths"
  done
  key=$( { cat "$wrapper/go.mod" "$wrapper/go.sum" "$wrapper"/*/*.go; printf '%s\n' "${built[@]}"; go version; go env GOOS GOARCH; printf '%s\n' "${build_flags[@]}" "${apiserver_flags[@]}"; cc --version | head -1; } | sha256sum | cut -c1-12)
  out=$cache/kfp-go-$v-$key
  if [ -f "$out/BUILD_INFO" ]; then  # written last, before the rename
    echo "$out"
    return
  fi
  mkdir -p "$cache"
  exec 9>"$cache/kfp-go-$v.lock"
  flock 9
  if [ -f "$out/BUILD_INFO" ]; then  # another call built it while this one waited
    echo "$out"
    return
  fi
  tmp=$(mktemp -d "$cache/.kfp-go-$v-$key.XXXXXX")
  log=$cache/kfp-go-$v-$key.log
  trap 'rm -rf "$tmp"' EXIT
  say "building KFP $v's ${cmds[*]} from $kfp_module@$pv, and ${own_cmds[*]} (minutes the first time; log: $log)"
  : >"$log"
  for c in "${cmds[@]}" "${own_cmds[@]}"; do
    local start=$SECONDS pkg=$kfp_module/backend/src/v2/cmd/$c cgo=0 flags=("${build_flags[@]}")
    [[ " ${own_cmds[*]} " == *" $c "* ]] && pkg=./$c
    [ "$c" = apiserver ] && pkg=$kfp_module/backend/src/apiserver && cgo=1 && flags=("${apiserver_flags[@]}")
    if ! (cd "$wrapper" && CGO_ENABLED=$cgo GOOS=linux GOFLAGS=-mod=readonly \
      nice -n 10 go build "${flags[@]}" -o "$tmp/$c" "$pkg") >>"$log" 2>&1; then
      local why
      why=$(refusal "$log")
      [ -n "$why" ] && fail "the Go module proxy refused $why, building KFP $v's $c; log: $log"
      fail "go build of $pkg ($kfp_module@$pv, KFP $v) failed: $(grep -m1 -vE '^(go: downloading|#)' "$log" | cut -c1-300); log: $log"
    fi
    say "built $c in $((SECONDS - start)) s"
  done
  "$tmp/compiler" -help >/dev/null 2>&1 || [ $? -eq 2 ] || fail "the built $tmp/compiler does not run; log: $log"
  local b
  for b in "${built[@]}"; do ln -s "$b" "$tmp/$(basename "$b")"; done
  if [[ " ${own_modules[*]} " == *" kube "* ]]; then copy_crds "$wrapper" "$tmp/crds" "$log"; fi
  printf 'KFP %s\nmodule %s@%s\n%s\nflags CGO_ENABLED=0 %s\napiserver CGO_ENABLED=1 %s\n' "$v" "$kfp_module" "$pv" "$(go version)" "${build_flags[*]}" "${apiserver_flags[*]}" >"$tmp/BUILD_INFO"
  chmod 755 "$tmp"
  mv "$tmp" "$out"
  trap - EXIT
  echo "$out"
}

if [ "${1:-}" = --check ]; then
  shift
  [ $# -gt 0 ] || fail "usage: $0 --check VERSION..."
  for v in "$@"; do check "$v"; done
  exit 0
fi
if [ "${1:-}" = --kube ]; then
  shift
  own_modules+=(kube)
fi
[ $# -gt 0 ] || set -- 2.0.5
for v in "$@"; do build "$v"; done
