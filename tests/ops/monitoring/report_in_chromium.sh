#!/usr/bin/env bash
# Renders a `tfxp report` page in headless Chromium (Debian's chromium) on the host and checks it:
# every section is in the rendered DOM, the page's script ran to its end (it marks the body
# data-ready="yes"), the console got no message (an uncaught error is one), and the page asked
# for nothing over the network. Keeps a screenshot. make test runs it on the page the slow
# loop test (tests/e2e/test_monitor_loop.py) writes; without that page it says it skipped.
#
# Usage: tests/ops/monitoring/report_in_chromium.sh REPORT.html SCREENSHOT.png
set -euo pipefail
report=${1:?usage: report_in_chromium.sh REPORT.html SCREENSHOT.png}
shot=${2:?usage: report_in_chromium.sh REPORT.html SCREENSHOT.png}
say() { printf '[report] %s\n' "$*" >&2; }

if [ ! -f "$report" ]; then
  say "skipped: no report at $report (the slow tier, tests/e2e/test_monitor_loop.py, writes it)"; exit 0
fi
if ! command -v chromium >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing Debian's chromium (once)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    say "skipped: chromium is not installed and this is not root with apt-get (apt-get install chromium)"; exit 0
  fi
fi

work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
url="file://$(cd "$(dirname "$report")" && pwd)/$(basename "$report")"
flags=(--headless --no-sandbox --disable-gpu --no-first-run --user-data-dir="$work/profile"
       --enable-logging=stderr --v=0 --virtual-time-budget=5000)
chromium "${flags[@]}" --dump-dom "$url" >"$work/dom.html" 2>"$work/console.log"
status=0
grep -q '<body[^>]*data-ready="yes"' "$work/dom.html" || { say "the page's script did not run to its end"; status=1; }
for section in summary statistics anomalies drift metrics baseline served live; do
  grep -q "<section id=\"$section\"" "$work/dom.html" || { say "section '$section' is missing"; status=1; }
done
for figure in 'class="roc"' 'class="confusion"' 'class="live"'; do
  grep -q "<svg $figure" "$work/dom.html" || { say "figure $figure is missing"; status=1; }
done
if grep -a 'CONSOLE' "$work/console.log" >"$work/errors.txt"; then
  say "the page wrote to the console (JavaScript errors are reported there):"; cat "$work/errors.txt" >&2; status=1
fi
if grep -Eo '(src|href)="https?://[^"]*' "$report" | head -3 | grep -q .; then
  say "the page loads from the network:"; grep -Eo '(src|href)="https?://[^"]*' "$report" | head -3 >&2; status=1
fi
mkdir -p "$(dirname "$shot")"
chromium "${flags[@]}" --hide-scrollbars --window-size=1280,2200 --screenshot="$shot" "$url" \
  >/dev/null 2>"$work/shot.log" || { say "no screenshot"; cat "$work/shot.log" >&2; status=1; }
[ $status = 0 ] && say "rendered in $(chromium --version 2>/dev/null | head -1): 8 sections, no console message, nothing loaded; screenshot $shot"
exit $status
