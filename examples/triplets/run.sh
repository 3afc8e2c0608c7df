#!/usr/bin/env bash
# End-to-end triplets with smollm2-135m on real data: the REBEL sample (split by document, fine-tuned
# with the REBEL and the JSON linearisation) and CoNLL04 (fine-tuned, and few-shot with retrieved
# demonstrations). Every row is scored strictly (offsets compared) on held-out documents; the
# stderr of each extract, with its count of entities absent from the text, is kept in *.log.
#
#   examples/triplets/run.sh [OUT] [STAGE...]      # stages: rebel conll04 fewshot (default: all)
#
# Environment: RELCLI (default: python -m relcli), DATA (default: ../shared/data), EPOCHS_REBEL,
# EPOCHS_CONLL (default 2 and 5), STYLES (default "json rebel"), REBEL_TRAIN_N (REBEL training
# documents, default all 811), FEWSHOT_N (CoNLL04 dev documents of the few-shot rows, default all).
set -euo pipefail
OUT=${1:-triplets-out}
shift || true
STAGES=${*:-rebel conll04 fewshot}
RELCLI=${RELCLI:-python -m relcli}
DATA=$(cd "${DATA:-$(dirname "$0")/../../../shared/data}" && pwd)
EPOCHS_REBEL=${EPOCHS_REBEL:-2}
EPOCHS_CONLL=${EPOCHS_CONLL:-5}
STYLES=${STYLES:-json rebel}
REBEL_TRAIN_N=${REBEL_TRAIN_N:-0}
FEWSHOT_N=${FEWSHOT_N:-0}
for name in REBEL_TRAIN_N FEWSHOT_N; do [[ ${!name} =~ ^[0-9]+$ ]] || { echo "error: $name must be a whole number, not '${!name}'" >&2; exit 2; }; done
for name in EPOCHS_REBEL EPOCHS_CONLL; do [[ ${!name} =~ ^[0-9]+(\.[0-9]+)?$ ]] || { echo "error: $name must be a number, not '${!name}'" >&2; exit 2; }; done
mkdir -p "$OUT"
cd "$OUT"
step() { local name=$1; shift; local t0=$(date +%s.%N); "$@"; printf '%-32s %8.1f s\n' "$name" "$(echo "$(date +%s.%N) - $t0" | bc)" | tee -a times.txt; }
# relations TRAIN OUT: the relation inventory of a training split, one per line
relations() { python3 -c 'import json, sys; print("\n".join(sorted({t["relation"] for l in open(sys.argv[1]) for t in json.loads(l)["triplets"]})))' "$1" > "$2"; }
# prf PREDS RELATIONS: scored against the inventory the model could choose from, so a relation of
# the training split that no held-out document happens to contain is not counted as invalid
prf() { $RELCLI score --scheme triplets -i "$1" -l "$2" --format json | python3 -c '
import json, sys
r = json.load(sys.stdin); m, s = r["micro"], r["strict"]
print("P %.2f R %.2f F1 %.2f | strict F1 %.2f | invalid %d" % (m["p"], m["r"], m["f1"], s["f1"], r["invalid"]["count"]))'; }
# row TITLE PREDS RELATIONS
row() { echo "$1: $(prf "$2" "$3") | $(grep -h 'not found in the text' "${2%.jsonl}.log" | tail -n 1)" | tee -a results.txt; }
# finetune NAME TRAIN_RECORDS STYLE EPOCHS -> adapter NAME (prompts NAME.prompts.jsonl)
finetune() {
  $RELCLI prompts --task triplets --format "$3" -t compact --labels-from-data -i "$2" -o "$1.prompts.jsonl"
  step "finetune $1" $RELCLI finetune -m smollm2-135m -i "$1.prompts.jsonl" -o "$1" --epochs "$4" --batch-size 8 --lr 1e-3
}
# extract MODEL INPUT PREDS [options...]
extract() { local model=$1 input=$2 preds=$3; shift 3; step "extract $preds" $RELCLI extract -m "$model" -i "$input" -o "$preds" "$@" 2> "${preds%.jsonl}.log"; }

for stage in $STAGES; do case $stage in
rebel)
  # 1,000 documents: 80% to train, the other 20% halved into dev (kept aside) and test.
  $RELCLI convert rebel "$DATA/rebel/sample.jsonl" --split-dev 0.2 --seed 13 --only train -o rebel.train.jsonl
  $RELCLI convert rebel "$DATA/rebel/sample.jsonl" --split-dev 0.2 --seed 13 --only dev -o rebel.held.jsonl
  half=$(( $(wc -l < rebel.held.jsonl) / 2 ))
  head -n "$half" rebel.held.jsonl > rebel.dev.jsonl
  tail -n +"$(( half + 1 ))" rebel.held.jsonl > rebel.test.jsonl
  if [ "$REBEL_TRAIN_N" -gt 0 ]; then head -n "$REBEL_TRAIN_N" rebel.train.jsonl > rebel.train.n && mv rebel.train.n rebel.train.jsonl; fi
  relations rebel.train.jsonl rebel.relations.txt
  echo "REBEL sample: $(wc -l < rebel.train.jsonl) train / $(wc -l < rebel.dev.jsonl) dev / $(wc -l < rebel.test.jsonl) test documents" | tee -a results.txt
  for style in $STYLES; do
    finetune "rebel-$style" rebel.train.jsonl "$style" "$EPOCHS_REBEL"
    extract "rebel-$style" rebel.test.jsonl "rebel-$style.test.jsonl" --max-new-tokens 192
    row "REBEL test, $style, $EPOCHS_REBEL epochs, copy on" "rebel-$style.test.jsonl" rebel.relations.txt
    extract "rebel-$style" rebel.test.jsonl "rebel-$style.test.nocopy.jsonl" --max-new-tokens 192 --no-copy
    row "REBEL test, $style, $EPOCHS_REBEL epochs, copy off" "rebel-$style.test.nocopy.jsonl" rebel.relations.txt
  done ;;
conll04)
  $RELCLI convert conll04 "$DATA/conll04/conll04_train.json" -o conll04.train.jsonl
  $RELCLI convert conll04 "$DATA/conll04/conll04_dev.json" -o conll04.dev.jsonl
  relations conll04.train.jsonl conll04.relations.txt
  for style in $STYLES; do
    finetune "conll04-$style" conll04.train.jsonl "$style" "$EPOCHS_CONLL"
    extract "conll04-$style" conll04.dev.jsonl "conll04-$style.dev.jsonl"
    row "CoNLL04 dev, $style, $EPOCHS_CONLL epochs, copy on" "conll04-$style.dev.jsonl" conll04.relations.txt
    extract "conll04-$style" conll04.dev.jsonl "conll04-$style.dev.nocopy.jsonl" --no-copy
    row "CoNLL04 dev, $style, $EPOCHS_CONLL epochs, copy off" "conll04-$style.dev.nocopy.jsonl" conll04.relations.txt
  done ;;
fewshot)
  # The base model, prompted with 3 demonstrations: the training documents nearest to each dev
  # document (minilm sentence embeddings), against the first 3 training documents for all.
  [ -f conll04.train.jsonl ] || $RELCLI convert conll04 "$DATA/conll04/conll04_train.json" -o conll04.train.jsonl
  [ -f conll04.dev.jsonl ] || $RELCLI convert conll04 "$DATA/conll04/conll04_dev.json" -o conll04.dev.jsonl
  [ -f conll04.relations.txt ] || relations conll04.train.jsonl conll04.relations.txt
  step "index conll04 train" $RELCLI index --model minilm -i conll04.train.jsonl -o conll04.train.index
  if [ "$FEWSHOT_N" -gt 0 ]; then head -n "$FEWSHOT_N" conll04.dev.jsonl > fewshot.dev.jsonl; else cp conll04.dev.jsonl fewshot.dev.jsonl; fi
  extract smollm2-135m fewshot.dev.jsonl fewshot-retrieved.dev.jsonl --task triplets --format json --shots 3 \
    --index conll04.train.index -l conll04.relations.txt --max-new-tokens 128
  row "CoNLL04 dev ($(wc -l < fewshot.dev.jsonl) documents), base model, 3 retrieved demonstrations" fewshot-retrieved.dev.jsonl conll04.relations.txt
  extract smollm2-135m fewshot.dev.jsonl fewshot-first.dev.jsonl --task triplets --format json --shots 3 \
    --shots-from conll04.train.jsonl -l conll04.relations.txt --max-new-tokens 128
  row "CoNLL04 dev ($(wc -l < fewshot.dev.jsonl) documents), base model, the first 3 training documents" fewshot-first.dev.jsonl conll04.relations.txt ;;
*) echo "error: unknown stage $stage (rebel, conll04, fewshot)" >&2; exit 2 ;;
esac; done
cat results.txt
