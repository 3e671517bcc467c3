#!/usr/bin/env bash
# Debian's MariaDB server where the tests run, for KFP 2.0.5's own API server (its database):
# `make test` calls this through scripts/runtime.sh, so it installs into the runtime environment
# (the Debian 13 root, or the host in venv mode). The tests start it themselves, as the user, on
# a loopback port with a data directory of their own (tests/kfp_backend/argo_runner.py); no
# service is started here. Once installed it does nothing. Without root it says so and leaves
# the tests that need it to skip.
set -euo pipefail
if command -v mariadbd >/dev/null && command -v mariadb-install-db >/dev/null; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "[mariadb] not installed and not root: the tests of KFP's API server will skip (apt-get install mariadb-server)" >&2
  exit 0
fi
echo "[mariadb] installing Debian's mariadb-server package" >&2
install() { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mariadb-server >/dev/null; }
install 2>/dev/null || { apt-get update -qq && install; }
