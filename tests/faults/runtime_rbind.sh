#!/usr/bin/env bash
# Checks that scripts/runtime.sh shows mounts below the checkout inside its root: mounts a
# small tmpfs under the checkout, writes a file into it through runtime.sh, and checks that
# the file is on the tmpfs, not on the disk underneath. Run on the host, as root.
set -euo pipefail

project=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
mnt=$(mktemp -d "$project/.rbind-check.XXXXXX")
cleanup() { umount "$mnt" 2>/dev/null || true; rm -rf "$mnt"; }
trap cleanup EXIT

mount -t tmpfs -o size=1m tmpfs "$mnt"
token=$$-$RANDOM
inside=$("$project/scripts/runtime.sh" /bin/sh -c 'echo "$1" > "$2/probe" && stat -f -c %T "$2"' _ "$token" "$mnt")
[ "$inside" = tmpfs ] || { echo "FAIL: inside the runtime $mnt is on '$inside', not the tmpfs"; exit 1; }
[ "$(cat "$mnt/probe" 2>/dev/null)" = "$token" ] || { echo "FAIL: the file written inside is not on the tmpfs"; exit 1; }
umount "$mnt"
[ ! -e "$mnt/probe" ] || { echo "FAIL: the file went to the disk under the tmpfs"; exit 1; }
echo ok
