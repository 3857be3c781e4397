#!/usr/bin/env bash
# Grade the reference notebook as the student "reference", from a fresh
# release, for the benchmark. Other submissions in autograder/submitted/
# are graded too, so time this on a course holding none.
set -euo pipefail
cd "$(dirname "$0")/.."
make --no-print-directory release >/dev/null
export_dir=$(mktemp -d)
trap 'rm -rf "$export_dir"' EXIT
cp autograder/source/momentum/assignment.ipynb "$export_dir/reference.ipynb"
rm -rf autograder/submitted/reference autograder/autograded/reference autograder/feedback/reference
make --no-print-directory grade FROM="$export_dir"
