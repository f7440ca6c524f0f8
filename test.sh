#!/usr/bin/env bash
# All tests: installs what they need (deploy/bootstrap.sh), builds, runs every test project except
# Category=Hardware, and ends with one line "N passed, N failed[, N skipped]".
#   ./test.sh                      everything
#   ./test.sh --filter EXPR        pass a dotnet test filter instead (e.g. "Category=Unit")
set -euo pipefail
cd "$(dirname "$0")"
# No ONNX Runtime telemetry from anything started here (the agent and its test hosts also switch it off themselves).
export ORT_DISABLE_TELEMETRY=1

filter="Category!=Hardware"
if [ "${1:-}" = "--filter" ] && [ -n "${2:-}" ]; then filter="$2"; fi

deploy/bootstrap.sh --arm64-emulation   # the arm64 agent runs under qemu-user in the tests
dotnet build EdgeFleet.sln -c Release --nologo -v quiet -clp:ErrorsOnly

results="$(mktemp -d)"
trap 'rm -rf "$results"' EXIT
set +e
# A test that hangs is killed after 10 minutes (and counts as failed) instead of holding CI until its deadline.
timeout --kill-after=30s 50m dotnet test EdgeFleet.sln -c Release --no-build --nologo --filter "$filter" \
  --blame-hang-timeout 10m --blame-hang-dump-type none \
  --logger "trx" --logger "console;verbosity=normal" --results-directory "$results"
status=$?
set -e

passed=0; failed=0; skipped=0
shopt -s nullglob
for trx in "$results"/*.trx; do
  counters="$(grep -o '<Counters [^>]*>' "$trx" | head -n 1)"
  get() { printf '%s' "$counters" | grep -o " $1=\"[0-9]*\"" | grep -o '[0-9]*' || echo 0; }
  total=$(get total); executed=$(get executed)
  passed=$((passed + $(get passed)))
  failed=$((failed + $(get failed) + $(get error) + $(get timeout) + $(get aborted)))
  skipped=$((skipped + total - executed))
done
# Name every failed test again at the end, where a truncated CI log still shows it, with the start of its message.
for trx in "$results"/*.trx; do
  awk '
    /<UnitTestResult / && /outcome="(Failed|Error|Timeout|Aborted)"/ {
      name = $0; sub(/.* testName="/, "", name); sub(/".*/, "", name); failing = 1; lines = 0; inmsg = 0
      print "FAILED: " name; next
    }
    failing && /<Message>/ { inmsg = 1; sub(/.*<Message>/, "") }
    failing && inmsg {
      done = sub(/<\/Message>.*/, "")
      gsub(/&lt;/, "<"); gsub(/&gt;/, ">"); gsub(/&quot;/, "\""); gsub(/&apos;/, "\047"); gsub(/&amp;/, "\\&")
      if (lines++ < 12) print "    " $0
      if (done) { inmsg = 0; failing = 0 }
    }
    failing && /<\/UnitTestResult>/ { failing = 0 }
  ' "$trx" || true
done
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
  failed=1   # a test host crashed or the run aborted before writing results
  echo "dotnet test exited with $status without a failing test in its results: a test host crashed (see above)" >&2
fi

line="$passed passed, $failed failed"
[ "$skipped" -gt 0 ] && line="$line, $skipped skipped"
echo "$line"
[ "$failed" -eq 0 ]
