#!/usr/bin/env bash
# Debian's Prometheus (prometheus and promtool) where the tests run: `make test` calls this
# through scripts/runtime.sh, so it installs into the runtime environment (the Debian 13 root,
# or the host in venv mode). Once installed it does nothing. Without root it says so and leaves
# the tests that need Prometheus to skip.
set -euo pipefail
if command -v prometheus >/dev/null && command -v promtool >/dev/null; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "[prometheus] not installed and not root: the Prometheus tests will skip (apt-get install prometheus)" >&2
  exit 0
fi
echo "[prometheus] installing Debian's prometheus package (promtool, prometheus)" >&2
install() { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; }
install 2>/dev/null || { apt-get update -qq && install; }
