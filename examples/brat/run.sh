#!/usr/bin/env bash
# Your own annotations, end to end: the brat materials-synthesis sample (80 documents, 11 relation
# types) split by document with a fixed seed (60 train / 20 test), relation classification on entity
# pairs within a sentence with the minilm classifier and with a fine-tuned smollm2-135m, scored
# (micro P/R/F1, no_relation excluded) on every pair of the held-out documents.
#
#   examples/brat/run.sh [OUT]
#
# Environment: RELCLI (default: python -m relcli), DATA (default: the shared brat sample),
# NEG_RATIO (training negatives per relation, default 1), EPOCHS (classifier, default 2),
# GEN_TRAIN_N (training pairs of the generator, a seeded sample, default 1500), GEN_TEST_DOCS
# (held-out documents the generator labels, default 2, 2730 pairs: it labels a few pairs/s on 2 CPU cores).
set -euo pipefail
OUT=${1:-brat-out}
RELCLI=${RELCLI:-python -m relcli}
DATA=$(cd "${DATA:-$(dirname "$0")/../../../shared/data/annotations/brat/mspt_materials_synthesis}" && pwd)
NEG_RATIO=${NEG_RATIO:-1}
EPOCHS=${EPOCHS:-2}
GEN_TRAIN_N=${GEN_TRAIN_N:-1500}
GEN_TEST_DOCS=${GEN_TEST_DOCS:-2}
for name in EPOCHS GEN_TRAIN_N GEN_TEST_DOCS; do [[ ${!name} =~ ^[0-9]+$ ]] || { echo "error: $name must be a whole number, not '${!name}'" >&2; exit 2; }; done
[[ $NEG_RATIO =~ ^[0-9]+(\.[0-9]+)?$ ]] || { echo "error: NEG_RATIO must be a number, not '$NEG_RATIO'" >&2; exit 2; }
mkdir -p "$OUT"
cd "$OUT"
step() { local name=$1; shift; local t0=$(date +%s.%N); "$@"; printf '%-28s %8.1f s\n' "$name" "$(echo "$(date +%s.%N) - $t0" | bc)" | tee -a times.txt; }
prf() { $RELCLI score -i "$1" --format json | python3 -c '
import json, sys
r = json.load(sys.stdin); m = r["micro"]
print("P %.2f R %.2f F1 %.2f (%d pairs)" % (m["p"], m["r"], m["f1"], r["n"]))'; }
: > times.txt

# The document split: every .ann file, shuffled with seed 13, first 60 train, the rest test.
python3 - "$DATA" <<'PY'
import random, sys
from pathlib import Path
docs = sorted(str(p) for p in Path(sys.argv[1]).glob("*.ann"))
random.Random(13).shuffle(docs)
Path("train.files").write_text("\n".join(docs[:60]) + "\n")
Path("test.files").write_text("\n".join(docs[60:]) + "\n")
PY
mapfile -t TRAIN_DOCS < train.files
mapfile -t TEST_DOCS < test.files
step convert-train $RELCLI convert brat "${TRAIN_DOCS[@]}" --pairs --negative-ratio "$NEG_RATIO" --seed 13 -o train.pairs.jsonl
step convert-test $RELCLI convert brat "${TEST_DOCS[@]}" --pairs -o test.pairs.jsonl
step convert-test-gen $RELCLI convert brat "${TEST_DOCS[@]:0:$GEN_TEST_DOCS}" --pairs -o test-gen.pairs.jsonl
step schema $RELCLI schema -i train.pairs.jsonl -o schema.json

# Encoder classifier (entity markers) on the training pairs; on the test pairs as it is and with
# the type mask of the schema inferred from the training pairs.
step finetune-clf $RELCLI finetune --method classifier -m minilm -i train.pairs.jsonl -o clf --epochs "$EPOCHS"
step extract-clf $RELCLI extract -m clf -i test.pairs.jsonl -o test.clf.jsonl
step extract-clf-schema $RELCLI extract -m clf --schema schema.json -i test.pairs.jsonl -o test.clf-schema.jsonl
step extract-clf-gen $RELCLI extract -m clf -i test-gen.pairs.jsonl -o test-gen.clf.jsonl

# Generator: smollm2-135m with LoRA on compact prompts of a seeded sample of the training pairs;
# the schema gives the label inventory it learns and is constrained to.
python3 -c 'import random, sys; rows = open("train.pairs.jsonl").readlines(); random.Random(13).shuffle(rows); sys.stdout.writelines(rows[:int(sys.argv[1])])' "$GEN_TRAIN_N" > train-gen.pairs.jsonl
$RELCLI prompts -t compact --schema schema.json -i train-gen.pairs.jsonl -o train-gen.prompts.jsonl
step finetune-gen $RELCLI finetune -m smollm2-135m -i train-gen.prompts.jsonl -o gen --epochs 1 --batch-size 8 --lr 1e-3
step extract-gen $RELCLI extract -m gen -i test-gen.pairs.jsonl -o test-gen.gen.jsonl

{
  echo "held-out documents: ${#TEST_DOCS[@]} ($(wc -l < test.pairs.jsonl) pairs); the generator's subset: $GEN_TEST_DOCS documents"
  echo "classifier, all held-out pairs:      $(prf test.clf.jsonl)"
  echo "  + the inferred schema's type mask:  $(prf test.clf-schema.jsonl)"
  echo "classifier, the generator's subset:  $(prf test-gen.clf.jsonl)"
  echo "generator, the generator's subset:   $(prf test-gen.gen.jsonl)"
} | tee results.txt
cat times.txt
