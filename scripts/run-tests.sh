#!/usr/bin/env bash
# Runs the suite (tap, arguments passed through) and, when it fails, ends the output with every
# failed assertion of this run and its diagnostics. The full TAP stream is ~25k lines; a CI log's
# tail then names what failed instead of whatever file happened to finish last.
# tap keeps each file's raw TAP in .tap/test-results/; only files written by this run are read.
# The runner's own stream is kept in .tap/run.tap.
set -uo pipefail
cd "$(dirname "$0")/.."

mkdir -p .tap
marker=.tap/run-started
touch "$marker"

npx tap "$@" | tee .tap/run.tap
status=${PIPESTATUS[0]}
[ "$status" -eq 0 ] && exit 0

echo
echo "# ---- failed in this run ----"
# The files that failed, as the runner saw them (a file killed by tap's timeout shows only here).
grep -a "^not ok " .tap/run.tap
found=0
while IFS= read -r -d '' file; do
  grep -q "not ok" "$file" || continue
  found=1
  echo "# ${file#.tap/test-results/}"
  # Each `not ok` line; for an assertion, its YAML diagnostics too (the indented block from `---`
  # to `...`). A subtest's line (it carries `# time=`) only names the path: its failed children
  # were printed just before it.
  awk '
    /^[[:space:]]*not ok / { print; inyaml = 0; want = ($0 !~ /# time=/); next }
    want && /^[[:space:]]*---[[:space:]]*$/ { inyaml = 1; print; next }
    inyaml { print; if ($0 ~ /^[[:space:]]*\.\.\.[[:space:]]*$/) { inyaml = 0; want = 0 }; next }
    { want = 0 }
  ' "$file"
done < <(find .tap/test-results -name '*.tap' -newer "$marker" -print0 | sort -z)
[ "$found" -eq 0 ] && echo "# (no failed assertion recorded: see tap's summary above)"
exit "$status"
