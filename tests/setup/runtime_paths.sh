#!/usr/bin/env bash
# Checks that paths outside the checkout read the same through scripts/runtime.sh as on the host
# (the Debian 13 root binds the host's users' directories at their own paths): a config and a
# CSV in a new directory under /tmp, named absolutely and relatively from that directory, and a
# file in the user's home. Run on the host; in the venv mode it passes trivially.
set -euo pipefail

project=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
runtime=$project/scripts/runtime.sh
work=$(mktemp -d /tmp/tfxp-paths.XXXXXX)
home_file=$(mktemp "$HOME/.tfxp-paths.XXXXXX")
cleanup() { rm -rf "$work" "$home_file"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

cp "$project/tests/data/taxi_tiny.csv" "$work/rides.csv"
sed -e 's|^\(  path: \).*|\1rides.csv|' "$project/pipeline/configs/taxi.yaml" > "$work/my.yaml"
grep -q '^  path: rides.csv$' "$work/my.yaml" || fail "could not point the copied config at rides.csv"

# An absolute config path outside the checkout; data.path relative to the config file.
path=$(cd / && "$runtime" tfxp config --config "$work/my.yaml" | python3 -c 'import json, sys; print(json.load(sys.stdin)["data"]["path"])')
[ "$path" = "$work/rides.csv" ] || fail "data.path read as '$path', not $work/rides.csv"
# A relative config path, from the directory it is in: the command starts there.
path=$(cd "$work" && "$runtime" tfxp config --config my.yaml | python3 -c 'import json, sys; print(json.load(sys.stdin)["data"]["path"])')
[ "$path" = "$work/rides.csv" ] || fail "from $work, data.path read as '$path'"
[ "$(cd "$work" && "$runtime" pwd)" = "$work" ] || fail "the command did not start in $work"
"$runtime" test -r "$work/rides.csv" || fail "$work/rides.csv is not readable inside the runtime"
# The user's home.
token=$$-$RANDOM
echo "$token" > "$home_file"
[ "$("$runtime" cat "$home_file")" = "$token" ] || fail "$home_file is not seen inside the runtime"
echo ok
