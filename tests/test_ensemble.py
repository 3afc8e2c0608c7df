"""Ensembles (`extract -m A -m B`): the averaging rule on stand-in members, then a tiny classifier and
a tiny adapter trained on the same records, through the CLI."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import RECORDS, write_jsonl
from relcli.ensemble import EnsemblePredictor, probabilities
from relcli.labels import SEMEVAL

torch = pytest.importorskip("torch")
runner = CliRunner()


class Member:
    """Stands in for a predictor: fixed label scores per record id."""

    def __init__(self, scores: dict[str, dict[str, float]], kind: str, labels=("A", "B", "Other")):
        self.table, self.scores, self.labels = scores, kind, list(labels)

    def predict(self, records):
        for r in records:
            yield dict(r, predicted="?", explain={"label_scores": self.table[r["id"]]})

    def summary(self):
        return [f"{self.scores} member done"]


def test_log_probabilities_become_a_distribution_and_probabilities_stay():
    p = probabilities({"A": math.log(0.2), "B": math.log(0.6), "Other": math.log(0.2)}, "log-probabilities")
    assert p == pytest.approx({"A": 0.2, "B": 0.6, "Other": 0.2})
    assert probabilities({"A": -2000.0, "B": -2001.0}, "log-probabilities")["A"] == pytest.approx(1 / (1 + math.exp(-1)))
    assert probabilities({"A": 0.3, "B": 0.7}, "probabilities") == {"A": 0.3, "B": 0.7}


def test_the_mean_decides_where_members_disagree_and_the_margin_favours_the_negative():
    records = [{"id": "x"}, {"id": "y"}]
    classifier = Member({"x": {"A": 0.55, "B": 0.05, "Other": 0.4}, "y": {"A": 0.1, "B": 0.3, "Other": 0.6}}, "probabilities")
    generator = Member({"x": {"A": math.log(0.1), "B": math.log(0.1), "Other": math.log(0.8)},
                        "y": {"A": math.log(0.05), "B": math.log(0.9), "Other": math.log(0.05)}}, "log-probabilities")
    out = list(EnsemblePredictor([classifier, generator], "Other", None, True, 4).predict(records))
    assert [r["predicted"] for r in out] == ["Other", "B"]  # x: A .325 vs Other .6; y: B .6 vs Other .325
    assert out[1]["explain"]["label_scores"] == pytest.approx({"A": 0.075, "B": 0.6, "Other": 0.325})
    assert [m["predicted"] for m in out[0]["explain"]["members"]] == ["A", "Other"]
    cautious = EnsemblePredictor([classifier, generator], "Other", 0.3, False, 4)
    assert [r["predicted"] for r in cautious.predict(records)] == ["Other", "Other"] and "explain" not in next(cautious.predict(records))
    # a label one member's schema mask left out counts 0 for it
    masked = Member({"x": {"B": 0.9, "Other": 0.1}, "y": {"B": 0.9, "Other": 0.1}}, "probabilities")
    assert [r["predicted"] for r in EnsemblePredictor([classifier, masked], None, None, False, 4).predict(records)] == ["B", "B"]
    assert cautious.summary() == ["probabilities member done", "log-probabilities member done"]


@pytest.fixture(scope="module")
def semeval_classifier(tmp_path_factory):
    from tiny_embedder import train_tiny_classifier

    return str(train_tiny_classifier(RECORDS, tmp_path_factory.mktemp("ensemble"), SEMEVAL, epochs=60, batch_size=4))


@pytest.fixture(scope="module")
def tiny_bert(semeval_classifier):
    return str(Path(semeval_classifier).parent / "bert")


def test_a_classifier_and_an_adapter_through_the_cli(semeval_classifier, tiny_adapter, tmp_path):
    data = write_jsonl(tmp_path / "in.jsonl", RECORDS)
    out = tmp_path / "ensemble.jsonl"
    done = runner.invoke(app(), ["extract", "-m", semeval_classifier, "-m", tiny_adapter, "-i", str(data), "-o", str(out),
                                 "--explain", "--dtype", "float32", "--batch-size", "3"])
    assert done.exit_code == 0, done.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == [r["id"] for r in RECORDS]
    for row in rows:
        members = row["explain"]["members"]
        assert len(members) == 2 and all(sum(m["label_scores"].values()) == pytest.approx(1, abs=1e-4) for m in members)
        mean = row["explain"]["label_scores"]
        assert set(mean) == set(SEMEVAL) and row["predicted"] == max(mean, key=mean.__getitem__)
        for label in SEMEVAL:
            assert mean[label] == pytest.approx(sum(m["label_scores"][label] for m in members) / 2, abs=1e-5)
    # both members learnt these records, and so did their mean
    assert [r["predicted"] for r in rows] == [r["relation"] for r in RECORDS]
    assert all(m["predicted"] == r["relation"] for row, r in zip(rows, RECORDS) for m in row["explain"]["members"])


def triplet_copy(adapter: str, tmp_path) -> str:
    """The adapter's folder, copied and described as a triplet generator."""
    folder = Path(shutil.copytree(adapter, tmp_path / "triplets", dirs_exist_ok=True))
    meta = json.loads((folder / "relcli.json").read_text())
    (folder / "relcli.json").write_text(json.dumps({**meta, "task": "triplets", "style": "json"}))
    return str(folder)


def test_what_an_ensemble_refuses(semeval_classifier, tiny_bert, tiny_adapter, tmp_path):
    from test_cli_safety import one_error

    from relcli.classifier import train_classifier

    data = str(write_jsonl(tmp_path / "in.jsonl", RECORDS[:2]))
    out = tmp_path / "out.jsonl"
    out.write_text("kept\n")

    def run(*models, extra=()):
        return runner.invoke(app(), ["extract", *[a for m in models for a in ("-m", m)], "-i", data, "-o", str(out), *extra])

    one_error(run(semeval_classifier, tiny_adapter, extra=("--index", str(tmp_path))), "index do(es) not apply to an ensemble of several models")
    one_error(run(semeval_classifier, tiny_adapter, extra=("-t", "simple")), "template do(es) not apply to an ensemble")
    one_error(run(semeval_classifier, tiny_adapter, extra=("--schema", str(tmp_path / "none.json"))), "--schema: ")
    two = tmp_path / "two-labels"
    train_classifier(RECORDS[:2], tiny_bert, two, labels=["Component-Whole(e2,e1)", "Other"], epochs=1,
                     batch_size=2, dtype="float32", device="cpu")
    one_error(run(semeval_classifier, str(two)), "labels another inventory than")
    one_error(run(semeval_classifier, triplet_copy(tiny_adapter, tmp_path)), "--model: ")
    one_error(run(semeval_classifier, triplet_copy(tiny_adapter, tmp_path)), "extracts triplets: label probabilities come from")
    assert out.read_text() == "kept\n"


def app():
    from relcli.cli import app

    return app


def test_a_student_learns_the_teachers_labels_not_the_gold_ones(semeval_classifier, tiny_bert, tmp_path):
    from relcli.classifier import load_classifier, train_classifier
    from relcli.ensemble import teacher_probabilities

    labels, soft = teacher_probabilities(semeval_classifier, RECORDS, dtype="float32", device="cpu")
    assert labels == SEMEVAL and all(sum(q.values()) == pytest.approx(1, abs=1e-4) for q in soft)
    # Gold labels rotated by one record: with the whole loss on the teacher's probabilities the
    # student follows the teacher (which learnt the true labels).
    rotated = [dict(r, relation=RECORDS[(i + 1) % len(RECORDS)]["relation"]) for i, r in enumerate(RECORDS)]
    train_classifier(rotated, tiny_bert, tmp_path / "student", labels=labels, soft_targets=soft, distill_weight=1.0,
                     teacher=semeval_classifier, pooling="entity-start", epochs=60, lr=3e-3, batch_size=4,
                     warmup_ratio=0.0, dropout=0.0, dtype="float32", device="cpu")
    student = load_classifier(tmp_path / "student", device="cpu", dtype="float32")
    assert [r["predicted"] for r in student.predict(RECORDS)] == [r["relation"] for r in RECORDS]
    training = json.loads((tmp_path / "student" / "relcli.json").read_text())["training"]
    assert (training["teacher"], training["distill_weight"]) == (semeval_classifier, 1.0)


def test_cli_distillation_and_its_refusals(semeval_classifier, tiny_bert, tiny_adapter, tmp_path):
    from test_cli_safety import one_error

    data = str(write_jsonl(tmp_path / "in.jsonl", RECORDS))
    common = ["finetune", "--method", "classifier", "-m", tiny_bert, "-i", data, "--epochs", "1", "--dtype", "float32"]
    done = runner.invoke(app(), [*common, "-o", str(tmp_path / "student"), "--teacher", tiny_adapter])
    assert done.exit_code == 0, done.output
    meta = json.loads((tmp_path / "student" / "relcli.json").read_text())
    assert meta["labels"] == SEMEVAL and (meta["training"]["teacher"], meta["training"]["distill_weight"]) == (tiny_adapter, 0.5)
    one_error(runner.invoke(app(), [*common, "-o", str(tmp_path / "x"), "--distill-weight", "0.3"]), "needs a --teacher")
    one_error(runner.invoke(app(), [*common, "-o", str(tmp_path / "x"), "--teacher", str(tmp_path / "nothing")]), "--teacher")
    fewer = tmp_path / "fewer.txt"
    fewer.write_text("\n".join(label for label in SEMEVAL if label != "Entity-Origin(e1,e2)"))
    one_error(runner.invoke(app(), [*common, "-o", str(tmp_path / "x"), "--teacher", semeval_classifier, "-l", str(fewer)]),
              "--teacher: the teacher labels Entity-Origin(e1,e2), which the student's inventory lacks")
    one_error(runner.invoke(app(), [*common, "-o", str(tmp_path / "x"), "--teacher", triplet_copy(tiny_adapter, tmp_path)]),
              "--teacher: ")
    lora = ["finetune", "-m", tiny_adapter, "-i", data, "-o", str(tmp_path / "y"), "--teacher", semeval_classifier]
    one_error(runner.invoke(app(), lora), "teacher do(es) not apply to the lora method")
    assert not (tmp_path / "x").exists()


def test_the_training_bar_shows_the_teachers_labelling_in_its_own_display():
    import io

    from rich.console import Console

    from relcli.console import TrainingBar

    out = io.StringIO()
    with TrainingBar(Console(file=out, force_terminal=True, width=100)) as bar:
        assert list(bar.track(iter(range(5)), "teacher labelling", 5)) == list(range(5))
        bar.update(1, 2, {"loss": 0.5})
    assert "teacher labelling" in out.getvalue() and "loss 0.5000" in out.getvalue()
