"""The TACRED experiment Makefile runs end to end on synthetic LDC-format data (all three variants)."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RELCLI = Path(sys.executable).parent / "relcli"

SENTENCES = [
    (["Alice", "works", "for", "Acme", "Corp", "."], (0, 0, "PERSON"), (3, 4, "ORGANIZATION"), "per:employee_of"),
    (["Bob", "was", "born", "in", "Paris", "-LRB-", "France", "-RRB-", "."], (0, 0, "PERSON"), (4, 4, "CITY"), "per:city_of_birth"),
    (["``", "Globex", "''", "is", "based", "in", "Springfield", "."], (1, 1, "ORGANIZATION"), (6, 6, "CITY"), "org:city_of_headquarters"),
    (["Carol", "met", "Dave", "yesterday", "."], (0, 0, "PERSON"), (2, 2, "PERSON"), "no_relation"),
]


def tacred_split(name: str, n: int) -> list[dict]:
    rows = []
    for i in range(n):
        tokens, subj, obj, relation = SENTENCES[i % len(SENTENCES)]
        rows.append({
            "id": f"{name}-{i}", "relation": relation, "token": tokens + [f"w{i}"],
            "subj_start": subj[0], "subj_end": subj[1], "subj_type": subj[2],
            "obj_start": obj[0], "obj_end": obj[1], "obj_type": obj[2],
        })
    return rows


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    root = tmp_path_factory.mktemp("tacred")
    (root / "json").mkdir()
    splits = {name: tacred_split(name, n) for name, n in (("train", 16), ("dev", 8), ("test", 8))}
    for name, rows in splits.items():
        (root / "json" / f"{name}.json").write_text(json.dumps(rows))
    (root / "shared" / "tacrev").mkdir(parents=True)
    (root / "shared" / "re-tacred").mkdir(parents=True)
    for name in ("dev", "test"):
        (root / "shared" / "tacrev" / f"{name}_patch.json").write_text(json.dumps([{"id": f"{name}-3", "relation": "per:title"}]))
    for name, rows in splits.items():
        kept = {r["id"]: r["relation"].replace("headquarters", "branch") for r in rows[:-1]}
        (root / "shared" / "re-tacred" / f"{name}_id2label.json").write_text(json.dumps(kept))
    return root


def run_grid(synthetic: Path, out: Path, *arguments: str) -> subprocess.CompletedProcess:
    """`make` in examples/tacred on the synthetic release, writing to ``out``; it must succeed."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    cmd = ["make", "-s", "-C", str(ROOT / "examples" / "tacred"), f"TACRED={synthetic / 'json'}",
           f"SHARED={synthetic / 'shared'}", f"OUT={out}", f"RELCLI={RELCLI}", *arguments]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["tacred", "tacrev", "retacred"])
def test_tacred_makefile_knn_row(synthetic, variant, tmp_path):
    out = tmp_path / "out"
    done = run_grid(synthetic, out, f"VARIANT={variant}", "knn", "table")
    test = [json.loads(line) for line in (out / "test.jsonl").read_text().splitlines()]
    if variant == "retacred":
        assert len(test) == 7 and "org:city_of_branch" in {r["relation"] for r in test}
    elif variant == "tacrev":
        assert next(r for r in test if r["id"] == "test-3")["relation"] == "per:title"
    else:
        assert len(test) == 8 and test[1]["text"].startswith("Bob was born in Paris ( France )")
    score = json.loads((out / "knn.score.json").read_text())
    assert score["scheme"] == "tacred" and score["n"] == len(test)
    assert "kNN label vote" in done.stdout


@pytest.mark.slow
def test_relation_aware_knn_row(synthetic, tmp_path):
    """The grid's knn-rel row: a minilm classifier, an index of its pair vectors, the kNN vote."""
    out = tmp_path / "out"
    done = run_grid(synthetic, out, "CLASSIFIER_ARGS=--epochs 1 --batch-size 8", "knn-rel", "table")
    assert json.loads((out / "classifier.index" / "index.json").read_text())["embed"] == "classifier"
    score = json.loads((out / "knn-rel.score.json").read_text())
    assert score["scheme"] == "tacred" and score["n"] == 8
    assert "kNN over the classifier's pair vectors" in done.stdout
