"""Print the grid's scores (OUT/<row>.score.json from `relcli score --format json`) as markdown."""

import json
import sys
from pathlib import Path

NAMES = {
    "zs-simple": "Simple query, zero-shot", "zs-rag": "RAG4RE, zero-shot", "ft": "Fine-tuned (LoRA)",
    "ft-rag": "Fine-tuned + RAG4RE", "knn": "kNN label vote (retrieval only)", "classifier": "Encoder classifier (minilm)",
    "knn-rel": "kNN over the classifier's pair vectors", "ft-rag-rel": "Fine-tuned on RAG prompts (neighbours by relation)",
    "ensemble": "Classifier + fine-tuned generator", "student": "Classifier distilled from the generator",
}

out, rows = Path(sys.argv[1]), sys.argv[2:]
print("| method | official macro-F1 | accuracy | micro P | micro R | micro F1 | invalid |")
print("|---|---|---|---|---|---|---|")
for row in rows:
    path = out / f"{row}.score.json"
    if not path.exists():
        print(f"| {NAMES.get(row, row)} | (not run) | | | | | |")
        continue
    s = json.loads(path.read_text())
    m = s["micro"]
    print(f"| {NAMES.get(row, row)} | {s['official']['f1']:.2f} | {s['accuracy']:.2f} | {m['p']:.2f} | {m['r']:.2f} | {m['f1']:.2f} | {s['invalid']['count']} |")
