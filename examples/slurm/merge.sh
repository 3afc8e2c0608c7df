#!/usr/bin/env bash
# Concatenate the parts written by extract.sbatch in task order onto stdout, after checking that
# together they hold every record of INPUT exactly once, in input order (one line per record).
#
#   examples/slurm/merge.sh INPUT.jsonl PARTS/ > predictions.jsonl
#
# Exits 1, writing nothing, when a record is missing (a task has not finished: requeue it), doubled
# or out of place, naming the first such record.
set -euo pipefail
if [ $# -ne 2 ]; then
    echo "usage: merge.sh INPUT.jsonl PARTS_DIR > predictions.jsonl" >&2
    exit 2
fi
input=$1 parts=$2
mapfile -t files < <(find "$parts" -maxdepth 1 -name 'part-*.jsonl' | sort -V)
if [ ${#files[@]} -eq 0 ]; then
    echo "merge.sh: no part-*.jsonl in $parts" >&2
    exit 1
fi
"${PYTHON:-python3}" - "$input" "${files[@]}" <<'PY'
import json
import sys

def ids(path):
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, 1):
            if line.strip():
                try:
                    yield json.loads(line)["id"]
                except (ValueError, KeyError, TypeError):
                    sys.exit(f"merge.sh: {path} line {number} is not a whole record (its task stopped mid-write: requeue it)")

want = list(ids(sys.argv[1]))
got = [(i, path) for path in sys.argv[2:] for i in ids(path)]
for n, (expected, (found, path)) in enumerate(zip(want, got), 1):
    if expected != found:
        sys.exit(f"merge.sh: record {n} should be {expected!r} but {path} has {found!r} there")
if len(got) != len(want):
    missing = f"{len(want) - len(got)} missing from the end, from {want[len(got)]!r} on" if len(got) < len(want) else f"{len(got) - len(want)} extra"
    sys.exit(f"merge.sh: {len(got)} records in {len(sys.argv) - 2} parts for {len(want)} in the input: {missing}")
print(f"merge.sh: {len(got)} records in {len(sys.argv) - 2} parts, in input order", file=sys.stderr)
PY
cat "${files[@]}"
