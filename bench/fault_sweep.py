"""Fault sweep (issue 11): bad inputs and faults over every subcommand, each a real subprocess.

    .venv/bin/python bench/fault_sweep.py            # 453 cases: 5 min on 2 idle cores, 8 on busy ones
    .venv/bin/python bench/fault_sweep.py --only extract --keep /tmp/sweep --json sweep.json
    .venv/bin/python bench/fault_sweep.py --fresh    # no forking of a warm interpreter (much slower)

Fixtures are built in a temp dir (a tiny random llama and a LoRA adapter on it, a tiny embedder
and an index, a tiny encoder classifier, data files of every format) with the builders of
tests/conftest.py; a handful of cases load the packaged smollm2-135m. Each case runs
`python -m relcli ...` as its own process: convert, prompts and score as new interpreters; extract,
finetune and index (and prompts with an index) as forks of a warm interpreter that imported torch
and transformers once (see ZYGOTE; --fresh runs them as new interpreters too). Each is judged on:

- the exit code against the case's expectation (0, 2, 130 for SIGINT ...); a silent wrong
  behaviour is exit 0 where a failure was expected, or a failure where success was expected;
- no Python traceback on stderr;
- exit 2 prints exactly one line, starting `error: ` (and naming what the case expects);
- every path named in the command that existed before the run is byte-for-byte unchanged after
  it, unless the case is a success that is meant to replace it (lost or clobbered data);
- a failed run leaves no temp file (`.NAME.*.tmp`) behind.

Kill cases SIGKILL or SIGINT a run between writes (polling for its temp output, or for lines of a
--resume output) and check that the output is then the old file or folder, or a complete new one.
Prints a markdown table of totals and every failing case. Not part of `make test`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

TRACEBACK = "Traceback (most recent call last)"
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


# ------------------------------------------------------------------------------------ the cases

@dataclass
class Kill:
    """Send ``sig`` once ``ready()`` is true (polled every 10 ms) plus ``delay`` seconds."""

    sig: int
    ready: Callable[[], bool]
    delay: float = 0.0


@dataclass
class Case:
    cmd: str  # the subcommand (the table's grouping)
    what: str
    args: list
    expect: tuple = (2,)  # acceptable exit codes
    stdin: bytes | None = None
    fragment: str | None = None  # expected in the one error line
    replaces: tuple = ()  # paths a successful run may change
    check: Callable[["Outcome"], str | None] | None = None  # further checks; a message when wrong
    kill: Kill | None = None
    nobody: bool = False  # run as uid 65534 (root ignores file modes)
    before: Callable[[], None] | None = None  # prepares files from earlier cases' outputs
    timeout: float = 240


@dataclass
class Outcome:
    case: Case
    number: int
    rc: int | None = None
    stdout: bytes = b""
    stderr: str = ""
    seconds: float = 0.0
    traceback: bool = False
    one_line: bool | None = None  # for exit 2: exactly one `error:` line
    wrong_exit: bool = False
    silent: bool = False
    clobbered: list = field(default_factory=list)
    litter: list = field(default_factory=list)
    problems: list = field(default_factory=list)
    mode: str = ""
    after_kill: str | None = None  # "old" or "new": what a kill left at the output

    @property
    def failed(self) -> bool:
        return bool(self.traceback or self.one_line is False or self.wrong_exit or self.clobbered or self.litter
                    or self.problems)


def snapshot(path: Path):
    """What a path holds: None, a file's (bytes hash, mode), or a folder's files and their hashes."""
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        return None
    if path.is_file():
        return ("file", hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mode)
    if path.is_dir():
        return ("dir", tuple(sorted((str(p.relative_to(path)), hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir")
                                    for p in path.rglob("*"))))
    return ("other",)


def temps(folder: Path) -> set[str]:
    return {str(p) for p in folder.rglob(".*.tmp")} if folder.exists() else set()


# A warm interpreter that forks one child per case: each child is its own process (own stdin,
# stdout, stderr, exit code, signals; uid 65534 where asked) running `python -m relcli ARGS`, but
# torch, transformers and the rest are imported once instead of once per case. The protocol is
# one JSON line per request on stdin; the answers are {"pid"} at once, then {"exit"}.
ZYGOTE = r"""
import io, json, os, runpy, signal, sys, traceback
import relcli.cli  # sets the libraries' environment defaults before they are imported
for name in ("torch", "transformers", "peft", "trl", "datasets", "sentence_transformers", "hnswlib", "safetensors.torch",
             "relcli.predictors", "relcli.models", "relcli.retrieval", "relcli.finetune", "relcli.classifier", "relcli.extract",
             "relcli.training", "relcli.triplet_extract", "relcli.scoring", "relcli.formats"):
    __import__(name)
answer = os.fdopen(os.dup(1), "w")
os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
print(json.dumps({"ready": True}), file=answer, flush=True)
for line in sys.stdin:
    request = json.loads(line)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.setpgid(0, 0)
            for fd, (path, flags) in enumerate(((request["stdin"], os.O_RDONLY), (request["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
                                                (request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC))):
                os.dup2(os.open(path, flags, 0o600), fd)
            if request["nobody"]:
                os.setgroups([])
                os.setgid(65534)
                os.setuid(65534)
            os.chdir(request["cwd"])
            signal.signal(signal.SIGINT, signal.default_int_handler)
            sys.stdin = io.TextIOWrapper(io.BufferedReader(io.FileIO(0, "r", closefd=False)), encoding="utf-8")
            sys.stdout = io.TextIOWrapper(io.BufferedWriter(io.FileIO(1, "w", closefd=False)), encoding="utf-8")
            sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8", errors="backslashreplace",
                                          line_buffering=True, write_through=True)
            sys.argv = ["relcli", *request["args"]]
            try:
                runpy.run_module("relcli", run_name="__main__", alter_sys=True)
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
                if not isinstance(exc.code, (int, type(None))):
                    print(exc.code, file=sys.stderr)
            except BaseException:
                traceback.print_exc()
                code = 1
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except Exception:
                    pass
        finally:
            os._exit(code)
    print(json.dumps({"pid": pid}), file=answer, flush=True)
    _, status = os.waitpid(pid, 0)
    print(json.dumps({"exit": os.waitstatus_to_exitcode(status)}), file=answer, flush=True)
"""


class Fresh:
    """`python -m relcli ARGS` as a new interpreter."""

    def __init__(self, sweep: "Sweep", case: Case, io: dict):
        command = [*(NOBODY if case.nobody else []), sys.executable, "-m", "relcli", *case.args]
        with open(io["stdin"], "rb") as stdin, open(io["stdout"], "wb") as stdout, open(io["stderr"], "wb") as stderr:
            self.proc = subprocess.Popen(command, stdin=stdin, stdout=stdout, stderr=stderr, env=sweep.env, cwd=sweep.work,
                                         start_new_session=True)
        self.pid = self.proc.pid

    def poll(self, timeout: float) -> int | None:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None


class Forked:
    """A child of the warm interpreter (see ZYGOTE)."""

    def __init__(self, sweep: "Sweep", case: Case, io: dict):
        self.zygote = sweep.zygote()
        self.zygote.stdin.write(json.dumps({"args": case.args, "cwd": str(sweep.work), "nobody": case.nobody, **io}) + "\n")
        self.zygote.stdin.flush()
        self.pid = json.loads(self.zygote.stdout.readline())["pid"]
        self.code = None

    def poll(self, timeout: float) -> int | None:
        import select

        if self.code is None and select.select([self.zygote.stdout], [], [], timeout)[0]:
            self.code = json.loads(self.zygote.stdout.readline())["exit"]
        return self.code


class Sweep:
    def __init__(self, work: Path, fresh: bool = False):
        self.work = work
        self.fresh = fresh  # every case as a new interpreter, none forked
        self.cases: list[Case] = []
        self.count = 0
        self.env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
                        OMP_NUM_THREADS="1", COLUMNS="200")
        for name in ("RELCLI_DEVICE", "RELCLI_DTYPE", "SLURM_ARRAY_TASK_ID"):
            self.env.pop(name, None)
        self._zygote = None

    def zygote(self) -> subprocess.Popen:
        if self._zygote is None:
            self._zygote = subprocess.Popen([sys.executable, "-c", ZYGOTE], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                            env=self.env, cwd=self.work, text=True)
            assert json.loads(self._zygote.stdout.readline())["ready"]
        return self._zygote

    def close(self) -> None:
        if self._zygote is not None:
            self._zygote.stdin.close()
            self._zygote.wait()

    def dir(self) -> Path:
        """A fresh folder for one case's outputs."""
        self.count += 1
        path = self.work / "cases" / f"{self.count:03d}"
        path.mkdir(parents=True)
        return path

    def add(self, cmd: str, what: str, args: list, **options) -> Case:
        case = Case(cmd, what, [str(a) for a in args], **options)
        if isinstance(case.expect, int):
            case.expect = (case.expect,)
        self.cases.append(case)
        return case

    def run(self, number: int, case: Case) -> Outcome:
        out = Outcome(case, number)
        if case.before:
            case.before()
        guarded = {a: snapshot(Path(a)) for a in case.args if a and a.startswith(str(self.work)) and Path(a).exists()}
        guarded = {a: s for a, s in guarded.items() if a not in map(str, case.replaces)}
        watched = [self.work / "cases", self.work / "data", self.work / "models"]
        before = set().union(*map(temps, watched))
        io = {name: str(self.work / "io" / f"{number}.{name}") for name in ("stdin", "stdout", "stderr")}
        put(Path(io["stdin"]), case.stdin or b"")
        Path(io["stdin"]).chmod(0o644)
        launch = Fresh if self.fresh or (case.cmd in FRESH and "--index" not in case.args) else Forked
        started = time.perf_counter()
        proc = launch(self, case, io)
        out.mode = "fresh" if launch is Fresh else "forked"
        deadline = started + case.timeout
        fired = False
        code = None
        while code is None and time.perf_counter() < deadline:
            code = proc.poll(0.01)
            if code is None and case.kill and not fired and case.kill.ready():
                time.sleep(case.kill.delay)
                code = proc.poll(0)
                if code is None:
                    os.kill(proc.pid, case.kill.sig)
                    fired = True
        if code is None:
            os.kill(proc.pid, signal.SIGKILL)
            code = proc.poll(60)
            out.problems.append(f"timed out after {case.timeout:.0f} s" if not fired else "did not stop after the signal")
        if case.kill and not fired:
            out.problems.append("finished before the kill (the case tested no kill)")
        out.seconds = time.perf_counter() - started
        out.rc = code
        out.stdout = Path(io["stdout"]).read_bytes()
        out.stderr = Path(io["stderr"]).read_bytes().decode("utf-8", "replace")
        out.traceback = TRACEBACK in out.stderr
        lines = [line for line in out.stderr.splitlines() if line.strip()]
        if out.rc == 2:
            out.one_line = len(lines) == 1 and lines[0].startswith("error: ")
            if out.one_line and case.fragment and case.fragment not in lines[0]:
                out.problems.append(f"error line lacks {case.fragment!r}")
        out.wrong_exit = out.rc not in case.expect
        out.silent = out.wrong_exit and ((out.rc == 0) != (0 in case.expect))
        if case.kill is None or out.rc != 0:
            out.clobbered = [a for a, s in guarded.items() if snapshot(Path(a)) != s]
        if case.kill is None and out.rc != 0:
            out.litter = sorted(set().union(*map(temps, watched)) - before)
        if case.check and not out.wrong_exit:
            try:
                message = case.check(out)
            except Exception as exc:  # a check that cannot even read the output is a finding too
                message = f"check raised {type(exc).__name__}: {exc}"
            if message:
                out.problems.append(message)
        return out


# Subcommands that never import torch start fast: they run as new interpreters (but for a retrieval
# index); the others fork.
FRESH = ("convert", "prompts", "score")


# ------------------------------------------------------------------------------------- fixtures

def jsonl(rows) -> bytes:
    return b"".join(json.dumps(row, ensure_ascii=False).encode() + b"\n" for row in rows)


def put(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def span(text: str, surface: str, type: str | None = None) -> dict:
    start = text.index(surface)
    return {"text": surface, "start": start, "end": start + len(surface), "type": type}


class Fixtures:
    """Everything the cases read, built once (in-process, a few seconds)."""

    def __init__(self, work: Path):
        from conftest import RECORDS, build_tiny_adapter, build_tiny_llama
        from tiny_embedder import make_tiny_embedder

        from relcli.classifier import train_classifier
        from relcli.labels import SEMEVAL
        from relcli.prompts import COMPACT, prompt_records
        from relcli.records import mark_entities
        from relcli.retrieval import build_index

        d = work / "data"
        self.dir = d
        self.records = RECORDS
        self.good = put(d / "good.jsonl", jsonl(RECORDS))
        self.big = put(d / "big.jsonl", jsonl(dict(r, id=f"b{i}") for i, r in enumerate(RECORDS * 250)))  # 2000
        self.preds = put(d / "preds.jsonl", jsonl(dict(r, predicted=r["relation"]) for r in RECORDS))
        text = "John Smith works for Acme Inc in Zurich."
        triplet = {"head": span(text, "John Smith", "Peop"), "relation": "Work_For", "tail": span(text, "Acme Inc", "Org")}
        self.e2e_rows = [{"id": "d1", "text": text, "triplets": [triplet]},
                         {"id": "d2", "text": "Acme Inc is based in Zurich.", "triplets": []}]
        self.e2e = put(d / "e2e.jsonl", jsonl(self.e2e_rows))
        self.e2e_preds = put(d / "e2e-preds.jsonl", jsonl(dict(r, predicted_triplets=r["triplets"]) for r in self.e2e_rows))
        prompts = list(prompt_records(RECORDS, COMPACT, SEMEVAL, "compact", "semeval"))
        self.prompts = put(d / "prompts.jsonl", jsonl(prompts))
        self.big_prompts = put(d / "big-prompts.jsonl", jsonl(dict(p, id=f"p{i}") for i, p in enumerate(prompts * 100)))
        self.labels = put(d / "labels.txt", "\n".join(SEMEVAL) + "\n")
        self.template = put(d / "template.txt", "{marked_sentence}\nRelation:\n")
        self.semeval = put(d / "semeval.txt", "".join(
            f'{i + 1}\t"{mark_entities(r)}"\n{r["relation"]}\nComment:\n\n' for i, r in enumerate(RECORDS)))
        self.semeval_big = put(d / "semeval-big.txt", self.semeval.read_text() * 1500)
        tokens = ["Bill", "Gates", "founded", "Microsoft", "."]
        self.tacred_item = {"id": "t1", "token": tokens, "subj_start": 0, "subj_end": 1, "obj_start": 3, "obj_end": 3,
                            "subj_type": "PERSON", "obj_type": "ORGANIZATION", "relation": "org:founded_by"}
        self.tacred = put(d / "tacred.json", json.dumps([self.tacred_item]))
        self.marked = put(d / "marked.txt", "".join(mark_entities(r) + "\n" for r in RECORDS))
        self.conll04 = put(d / "conll04.json", json.dumps([{
            "tokens": ["John", "Smith", "works", "for", "Acme", "Inc", "in", "Zurich"],
            "tags": ["B-Peop", "L-Peop", "O", "O", "B-Org", "L-Org", "O", "U-Loc"],
            "relations": [{"head": 0, "tail": 1, "type": "Work_For"}], "orig_id": 42}]))
        dtext = "Google was founded on September 4, 1998, by Larry Page and Sergey Brin."
        self.doccano_item = {"text": dtext, "entities": [
            {"id": 0, "start_offset": 0, "end_offset": 6, "label": "ORG"},
            {"id": 2, "start_offset": 44, "end_offset": 54, "label": "PERSON"}],
            "relations": [{"id": 7, "from_id": 0, "to_id": 2, "type": "foundedBy"}]}
        self.doccano = put(d / "doccano.jsonl", jsonl([self.doccano_item]))
        self.rebel = put(d / "rebel.jsonl", jsonl([{
            "docid": "1", "text": text, "entities": [], "triples": [{
                "subject": {"surfaceform": "John Smith", "boundaries": [0, 10]},
                "predicate": {"surfaceform": "employer"},
                "object": {"surfaceform": "Acme Inc", "boundaries": [21, 29]}}]}]))
        btext = "John Smith works for Acme Inc."
        self.brat = d / "brat"
        put(self.brat / "doc.txt", btext)
        put(self.brat / "doc.ann", "T1\tPeop 0 10\tJohn Smith\nT2\tOrg 21 29\tAcme Inc\nR1\tWork_For Arg1:T1 Arg2:T2\n")
        ltext = "Microsoft was founded by Bill Gates in Albuquerque."
        self.ls_task = {"id": 479, "data": {"text": ltext}, "annotations": [{"id": 10, "completed_by": 1, "was_cancelled": False, "result": [
            {"id": "a", "from_name": "label", "to_name": "text", "type": "labels",
             "value": {"start": 0, "end": 9, "text": "Microsoft", "labels": ["ORG"]}},
            {"id": "b", "from_name": "label", "to_name": "text", "type": "labels",
             "value": {"start": 25, "end": 35, "text": "Bill Gates", "labels": ["PER"]}},
            {"from_id": "b", "to_id": "a", "type": "relation", "direction": "right", "labels": ["founded"]}]}]}
        self.label_studio = put(d / "label-studio.json", json.dumps([self.ls_task]))
        ptext = "Smad binds Id1 but not Id2."
        pspan = lambda s, e: {"text": ptext[s:e], "start": s, "end": e, "token_start": 0, "token_end": 0, "type": "span", "label": "GGP"}
        self.prodigy_item = {"text": ptext, "spans": [pspan(0, 4), pspan(11, 14)], "answer": "accept", "relations": [
            {"head": 0, "child": 2, "head_span": {"start": 0, "end": 4, "label": "GGP"},
             "child_span": {"start": 11, "end": 14, "label": "GGP"}, "label": "binds"}]}
        self.prodigy = put(d / "prodigy.jsonl", jsonl([self.prodigy_item]))
        self.not_utf8 = put(d / "latin1.jsonl", '{"id": "x", "text": "caf\xe9"}\n'.encode("latin-1"))
        self.binary = put(d / "binary.bin", bytes(random.Random(0).randrange(256) for _ in range(4096)))
        self.empty = put(d / "empty.jsonl", b"")

        models = work / "models"
        self.llama = build_tiny_llama(models / "llama")
        self.adapter = build_tiny_adapter(self.llama, models / "adapter")
        self.embedder = str(make_tiny_embedder(models / "embedder"))
        self.bert = str(models / "embedder-hf")  # the embedder's plain BERT folder: a classifier base
        train_classifier(RECORDS, self.bert, models / "classifier", labels=SEMEVAL, epochs=1, batch_size=8, dtype="float32",
                         device="cpu")
        self.classifier = str(models / "classifier")
        self.index = str(models / "index")
        build_index(iter(RECORDS), self.index, model=self.embedder, m=8, ef_construction=20, device="cpu", dtype="float32")
        self.models = models


def copy(source, target: Path, checkpoints: bool = True) -> Path:
    if Path(source).is_dir():
        shutil.copytree(source, target, ignore=None if checkpoints else shutil.ignore_patterns("checkpoints"))
    else:
        shutil.copyfile(source, target)
    return target


# ------------------------------------------------------------------------------- output checks

def ids_of(path: Path) -> list:
    return [json.loads(line)["id"] for line in Path(path).read_bytes().splitlines() if line.strip()]


def lines_of(path: Path) -> int:
    return sum(1 for line in Path(path).read_bytes().splitlines() if line.strip())


def records_out(path: Path, n: int):
    """A check: ``path`` holds n JSON records."""
    def check(out: Outcome) -> str | None:
        if not Path(path).is_file():
            return f"{path.name} was not written"
        got = lines_of(path)
        return None if got == n else f"{path.name} has {got} records, expected {n}"
    return check


def stdout_records(n: int):
    def check(out: Outcome) -> str | None:
        got = [line for line in out.stdout.splitlines() if line.strip()]
        try:
            [json.loads(line) for line in got]
        except ValueError:
            return "stdout is not JSONL"
        return None if len(got) == n else f"stdout has {len(got)} records, expected {n}"
    return check


def old_or_complete_file(path: Path, old, complete: Callable[[Path], bool]):
    """After a kill: the old file (``old`` is its snapshot, None when there was none) or a complete new one."""
    def check(out: Outcome) -> str | None:
        now = snapshot(path)
        if now == old:
            out.after_kill = "old"
            return None
        if now is None:
            return f"{path.name} is gone"
        out.after_kill = "new"
        return None if complete(path) else f"{path.name} is neither the old file nor a complete new one"
    return check


def old_or_complete_dir(path: Path, old, complete: Callable[[Path], bool], ignore: str | None = None):
    def strip(snap):
        if snap is None or ignore is None:
            return snap
        return (snap[0], tuple(item for item in snap[1] if not item[0].startswith(ignore)))

    def check(out: Outcome) -> str | None:
        now = snapshot(path)
        if strip(now) == strip(old):
            out.after_kill = "old"
            return None
        if now is None:
            return f"{path.name} is gone"
        out.after_kill = "new"
        try:
            ok = complete(path)
        except Exception as exc:
            return f"{path.name} is neither the old folder nor a complete new one ({type(exc).__name__}: {exc})"
        return None if ok else f"{path.name} is neither the old folder nor a complete new one"
    return check


def all_of(*checks):
    def check(out: Outcome) -> str | None:
        return next((message for c in checks if c and (message := c(out))), None)
    return check


def temp_beside(path: Path, minimum: int = 1) -> Callable[[], bool]:
    """Ready to kill: a temp file or folder of ``path`` exists (a file with at least ``minimum`` bytes)."""
    def ready() -> bool:
        for p in Path(path).parent.glob(f".{Path(path).name}.*.tmp"):
            if p.is_dir() or p.stat().st_size >= minimum:
                return True
        return False
    return ready


def has_lines(path: Path, n: int) -> Callable[[], bool]:
    return lambda: Path(path).exists() and Path(path).read_bytes().count(b"\n") >= n


def exists(path: Path) -> Callable[[], bool]:
    return lambda: Path(path).exists()


# --------------------------------------------------------------------------------- record faults

DROP = object()


def changed(record: dict, path: str, value) -> dict:
    """A deep copy of ``record`` with the dotted ``path`` set to ``value`` (or removed: DROP)."""
    record = json.loads(json.dumps(record))
    *parents, last = path.split(".")
    target = record
    for key in parents:
        target = target[key]
    if value is DROP:
        target.pop(last, None)
    else:
        target[last] = value
    return record


def record_faults(base: dict) -> list[tuple[str, bytes]]:
    """(what, one JSONL line) for wrong types and values in every field of an RC record."""
    text_len = len(base["text"])
    faults = [
        ("id missing", changed(base, "id", DROP)), ("id a float", changed(base, "id", 1.5)),
        ("id a bool", changed(base, "id", True)), ("id a list", changed(base, "id", ["a"])),
        ("id null", changed(base, "id", None)), ("text missing", changed(base, "text", DROP)),
        ("text a number", changed(base, "text", 7)), ("text null", changed(base, "text", None)),
        ("head missing", changed(base, "head", DROP)), ("head a string", changed(base, "head", "configuration")),
        ("head a list", changed(base, "head", [1, 2])), ("head.text missing", changed(base, "head.text", DROP)),
        ("head.text a number", changed(base, "head.text", 3)), ("head.start a string", changed(base, "head.start", "4")),
        ("head.start a float", changed(base, "head.start", 4.0)), ("head.start negative", changed(base, "head.start", -1)),
        ("head.start a bool", changed(base, "head.start", True)), ("head.start after head.end", changed(base, "head.start", base["head"]["end"] + 1)),
        ("head.end past the text", changed(base, "head.end", text_len + 5)), ("head.end 10**30", changed(base, "head.end", 10**30)),
        ("head.end missing", changed(base, "head.end", DROP)), ("head span not matching its text", changed(base, "head.text", "wrong")),
        ("head.type a number", changed(base, "head.type", 5)), ("tail a number", changed(base, "tail", 0)),
        ("tail.start past the text", changed(changed(base, "tail.start", text_len + 1), "tail.end", text_len + 2)),
        ("relation a number", changed(base, "relation", 3)), ("relation a list", changed(base, "relation", ["Other"])),
        ("predicted an object", changed(base, "predicted", {"x": 1})),
    ]
    lines = [(what, json.dumps(row).encode()) for what, row in faults]
    lines += [
        ("malformed JSON", b'{"id": "x", "text": '), ("a JSON array, not an object", b"[1, 2, 3]"),
        ("a JSON string", b'"just text"'), ("NaN in a record", b'{"id": NaN, "text": "a"}'),
        ("trailing garbage after the object", json.dumps(base).encode() + b" xyz"),
        ("invalid UTF-8 inside a string", json.dumps(base).encode().replace(b"system", b"syst\xffm")),
        ("JSON nested 100000 deep", b"[" * 100000 + b"]" * 100000),
        ("a duplicate key overriding text", json.dumps(base).encode()[:-1] + b', "text": 5}'),
    ]
    return lines


# ------------------------------------------------------------------------------------ the cases

def build(s: Sweep, f: Fixtures) -> dict[str, Path]:
    """Every case, in order (a few depend on the ones before them: references, kill then resume)."""
    add, d = s.add, f.dir

    def keep(name: str = "out.jsonl", data: bytes = b"keep: an earlier run's output\n") -> Path:
        return put(s.dir() / name, data)

    def bad(name: str, data: bytes | str) -> Path:
        return put(d / "bad" / name, data)

    semeval_labels = ["-l", "semeval"]
    llama = ["-m", f.llama, "-t", "compact", *semeval_labels, "--dtype", "float32", "--device", "cpu"]
    adapter = ["-m", f.adapter, "--dtype", "float32", "--device", "cpu"]
    knn = ["--decode", "knn", "--index", f.index, "--device", "cpu", "--dtype", "float32"]
    nobody_dir = s.dir()
    nobody_dir.chmod(0o755)  # owned by root: uid 65534 cannot write into it
    for folder in (s.work, s.work / "cases", d, f.models):
        folder.chmod(0o755)
    under_file = f.good / "x.jsonl"  # a path whose parent is a file

    # ------------------------------------------------------------------------------- convert
    add("convert", "unknown format", ["convert", "xml", f.semeval], fragment="unknown format")
    add("convert", "missing file", ["convert", "semeval", d / "nope.txt", "-o", keep()], fragment="nope.txt")
    add("convert", "a directory as the file", ["convert", "semeval", d, "-o", keep()])
    unreadable = bad("unreadable.txt", f.semeval.read_bytes())
    unreadable.chmod(0o000)
    add("convert", "unreadable file (as uid 65534)", ["convert", "semeval", unreadable], nobody=True)
    out = s.dir() / "o.jsonl"
    add("convert", "empty file: no records", ["convert", "semeval", f.empty, "-o", out], expect=0, check=records_out(out, 0))
    add("convert", "binary file", ["convert", "semeval", f.binary, "-o", keep()])
    add("convert", "invalid UTF-8", ["convert", "semeval", bad("latin1.txt", '1\t"caf\xe9 <e1>a</e1> <e2>b</e2>"\nOther\n'.encode("latin-1"))],
        fragment="UTF-8")
    out = s.dir() / "o.jsonl"
    add("convert", "BOM before the first line", ["convert", "semeval", bad("bom.txt", b"\xef\xbb\xbf" + f.semeval.read_bytes()), "-o", out],
        expect=0, check=records_out(out, 8))
    out = s.dir() / "o.jsonl"
    add("convert", "CRLF line ends", ["convert", "semeval", bad("crlf.txt", f.semeval.read_bytes().replace(b"\n", b"\r\n")), "-o", out],
        expect=0, check=records_out(out, 8))
    add("convert", "semeval: no label line", ["convert", "semeval", bad("nolabel.txt", '1\t"<e1>a</e1> b <e2>c</e2>"\n\n'), "-o", keep()])
    add("convert", "semeval: a marker missing", ["convert", "semeval", bad("nomarker.txt", '1\t"<e1>a</e1> b c"\nOther\n\n')])
    add("convert", "semeval: a marker twice", ["convert", "semeval", bad("twice.txt", '1\t"<e1>a</e1> <e1>b</e1> <e2>c</e2>"\nOther\n\n')])
    add("convert", "semeval: </e1> before <e1>", ["convert", "semeval", bad("order.txt", '1\t"</e1>a<e1> <e2>c</e2>"\nOther\n\n')])
    add("convert", "tacred: not a list", ["convert", "tacred", bad("tacred-obj.json", json.dumps(f.tacred_item)), "-o", keep()])
    add("convert", "tacred: malformed JSON", ["convert", "tacred", bad("tacred-bad.json", "[{")])
    add("convert", "tacred: subj_end past the tokens", ["convert", "tacred", bad("t1.json", json.dumps([dict(f.tacred_item, subj_end=9)]))])
    add("convert", "tacred: token not a list", ["convert", "tacred", bad("t2.json", json.dumps([dict(f.tacred_item, token="Bill")]))])
    add("convert", "tacred: subj_start a string", ["convert", "tacred", bad("t3.json", json.dumps([dict(f.tacred_item, subj_start="0")]))])
    add("convert", "tacred: obj_start 10**30", ["convert", "tacred", bad("t4.json", json.dumps([dict(f.tacred_item, obj_start=10**30)]))])
    add("convert", "tacred: relation a number", ["convert", "tacred", bad("t5.json", json.dumps([dict(f.tacred_item, relation=5)]))])
    add("convert", "tacred: --patch missing", ["convert", "tacred", f.tacred, "--patch", d / "nope.json", "-o", keep()])
    add("convert", "tacred: --patch malformed", ["convert", "tacred", f.tacred, "--patch", bad("patch.json", "{")])
    add("convert", "tacred: --patch a directory", ["convert", "tacred", f.tacred, "--patch", d], fragment="--patch")
    add("convert", "tacred: --patch invalid UTF-8", ["convert", "tacred", f.tacred, "--patch", bad("patch-latin1.json", b'{"t1": "caf\xe9"}')])
    add("convert", "tacred: --patch of the wrong shape", ["convert", "tacred", f.tacred, "--patch", bad("patch-shape.json", "[1, 2]")])
    add("convert", "--patch with semeval", ["convert", "semeval", f.semeval, "--patch", f.tacred], fragment="--patch")
    for value in ("-0.1", "1.5", "abc"):
        add("convert", f"--split-dev {value}", ["convert", "semeval", f.semeval, "--split-dev", value, "-o", keep()], fragment="--split-dev")
    add("convert", "--only foo", ["convert", "semeval", f.semeval, "--split-dev", "0.1", "--only", "foo"], fragment="--only")
    add("convert", "--only without --split-dev", ["convert", "semeval", f.semeval, "--only", "train"], fragment="--only")
    add("convert", "--seed abc", ["convert", "semeval", f.semeval, "--split-dev", "0.1", "--seed", "abc"], fragment="--seed")
    add("convert", "--annotator with semeval", ["convert", "semeval", f.semeval, "--annotator", "x"], fragment="--annotator")
    add("convert", "--pairs with semeval", ["convert", "semeval", f.semeval, "--pairs"], fragment="--pairs")
    add("convert", "--max-distance without --pairs", ["convert", "brat", f.brat, "--max-distance", "5"], fragment="--max-distance")
    add("convert", "--max-distance -1", ["convert", "brat", f.brat, "--pairs", "--max-distance", "-1"], fragment="--max-distance")
    add("convert", "--negative-ratio -1", ["convert", "brat", f.brat, "--pairs", "--negative-ratio", "-1"], fragment="--negative-ratio")
    add("convert", "--split-dev nan", ["convert", "semeval", f.semeval, "--split-dev", "nan"], fragment="--split-dev")
    add("convert", "--negative-ratio nan", ["convert", "brat", f.brat, "--pairs", "--negative-ratio", "nan"], fragment="--negative-ratio")
    add("convert", "-o a directory", ["convert", "semeval", f.semeval, "-o", s.dir()], fragment="directory")
    add("convert", "-o in a folder it cannot write (uid 65534)", ["convert", "semeval", f.semeval, "-o", nobody_dir / "o.jsonl"], nobody=True)
    add("convert", "-o under a file", ["convert", "semeval", f.semeval, "-o", under_file])
    own = copy(f.marked, s.dir() / "marked.txt")
    add("convert", "-o is the input file", ["convert", "marked", own, "-o", own], fragment="input")
    add("convert", "marked: a line without markers", ["convert", "marked", bad("plain.txt", "no markers here\n"), "-o", keep()])
    add("convert", "marked: JSON text a number", ["convert", "marked", bad("mj.txt", '{"text": 5}\n')])
    out = s.dir() / "o.jsonl"
    add("convert", "marked --skip-invalid skips and counts", ["convert", "marked", bad("mixed.txt", f.marked.read_text() + "bad line\n"),
        "--skip-invalid", "-o", out], expect=0, check=records_out(out, 8))
    add("convert", "marked: binary stdin", ["convert", "marked", "-"], stdin=f.binary.read_bytes())
    add("convert", "marked: JSON nested 100000 deep", ["convert", "marked", bad("deep.txt", b"{\"a\":" * 1 + b"[" * 100000 + b"]" * 100000 + b"}\n")])
    out = s.dir() / "o.jsonl"
    long = "word " * 1_000_000
    add("convert", "marked: one 5 MB line", ["convert", "marked", bad("huge.txt", f"<e1>a</e1> {long} <e2>b</e2>\n"), "-o", out],
        expect=0, check=records_out(out, 1))
    add("convert", "brat: missing directory", ["convert", "brat", d / "no-brat"])
    out = s.dir() / "o.jsonl"
    add("convert", "brat: NAME.txt reads NAME.ann beside it", ["convert", "brat", f.brat / "doc.txt", "-o", out], expect=0,
        check=records_out(out, 1))
    add("convert", "brat: a file that is neither .ann nor .txt", ["convert", "brat", f.tacred], fragment="brat")
    lonely = bad("brat-lonely/x.ann", "T1\tPeop 0 4\tJohn\n")
    add("convert", "brat: .ann without its .txt", ["convert", "brat", lonely])
    put(d / "bad" / "brat-off" / "doc.txt", "John Smith works.")
    add("convert", "brat: offsets past the text", ["convert", "brat", put(d / "bad" / "brat-off" / "doc.ann", "T1\tPeop 0 99\tJohn\n")])
    add("convert", "brat: offsets not numbers", ["convert", "brat", put(d / "bad" / "brat-nan" / "doc.ann", "T1\tPeop a b\tJohn\n")])
    put(d / "bad" / "brat-nan" / "doc.txt", "John Smith works.")
    add("convert", "doccano: malformed JSON", ["convert", "doccano", bad("doccano.jsonl", '{"text": "a", "entities": [\n'), "-o", keep()])
    add("convert", "doccano: offsets past the text", ["convert", "doccano", bad("doccano2.jsonl", jsonl([changed(f.doccano_item, "entities",
        [{"id": 0, "start_offset": 0, "end_offset": 500, "label": "ORG"}])]))])
    add("convert", "doccano: relation to a missing entity", ["convert", "doccano", bad("doccano3.jsonl", jsonl([changed(f.doccano_item, "relations",
        [{"id": 1, "from_id": 0, "to_id": 99, "type": "x"}])]))])
    add("convert", "doccano: entities not a list", ["convert", "doccano", bad("doccano4.jsonl", jsonl([changed(f.doccano_item, "entities", 5)]))])
    add("convert", "label-studio: not JSON", ["convert", "label-studio", f.binary])
    add("convert", "label-studio: region past the text", ["convert", "label-studio", bad("ls.json", json.dumps([changed(f.ls_task,
        "annotations", [{"id": 1, "completed_by": 1, "was_cancelled": False, "result": [{"id": "a", "from_name": "label", "to_name": "text",
        "type": "labels", "value": {"start": 0, "end": 900, "text": "x", "labels": ["ORG"]}}]}])]))])
    add("convert", "label-studio: data.text missing", ["convert", "label-studio", bad("ls2.json", json.dumps([changed(f.ls_task, "data", {})]))])
    add("convert", "prodigy: relation span past the text", ["convert", "prodigy", bad("prodigy.jsonl", jsonl([changed(f.prodigy_item,
        "relations", [{"head_span": {"start": 0, "end": 200, "label": "X"}, "child_span": {"start": 11, "end": 14, "label": "GGP"},
                       "label": "binds"}])]))])
    out = s.dir() / "o.jsonl"
    add("convert", "prodigy: relation span not among the spans is added, and counted", ["convert", "prodigy",
        bad("prodigy-add.jsonl", jsonl([changed(f.prodigy_item, "relations", [{"head_span": {"start": 0, "end": 2, "label": "X"},
        "child_span": {"start": 11, "end": 14, "label": "GGP"}, "label": "binds"}])])), "-o", out], expect=0,
        check=lambda o, out=out: None if "matching no span" in o.stderr and lines_of(out) == 1 else "not added and counted")
    add("convert", "prodigy: text a number", ["convert", "prodigy", bad("prodigy2.jsonl", jsonl([changed(f.prodigy_item, "text", 3)]))])
    add("convert", "conll04: tags shorter than tokens", ["convert", "conll04", bad("conll.json", json.dumps([{"tokens": ["a", "b"], "tags": ["O"],
        "relations": []}]))])
    add("convert", "conll04: relation to a missing entity", ["convert", "conll04", bad("conll2.json", json.dumps([{"tokens": ["a"],
        "tags": ["U-Peop"], "relations": [{"head": 0, "tail": 5, "type": "x"}]}]))])
    add("convert", "rebel: boundaries a string", ["convert", "rebel", bad("rebel.jsonl", jsonl([{"docid": "1", "text": "a b", "triples": [
        {"subject": {"surfaceform": "a", "boundaries": "0-1"}, "predicate": {"surfaceform": "r"}, "object": {"surfaceform": "b"}}]}]))])
    add("convert", "rebel: triples not a list", ["convert", "rebel", bad("rebel2.jsonl", jsonl([{"docid": "1", "text": "a", "triples": {}}]))])
    add("convert", "markup in a missing path is printed literally", ["convert", "semeval", d / "[bold]x[/bold].txt"], fragment="[bold]x[/bold].txt")
    add("convert", "second file missing: the first file's records are not written",
        ["convert", "semeval", f.semeval, d / "nope2.txt", "-o", keep()])
    out = s.dir() / "o.jsonl"
    add("convert", "stdin, empty", ["convert", "semeval", "-", "-o", out], stdin=b"", expect=0, check=records_out(out, 0))

    # ------------------------------------------------------------------------------- prompts
    add("prompts", "no label inventory", ["prompts", "-i", f.good, "-o", keep()], fragment="--labels")
    add("prompts", "--labels unknown name", ["prompts", "-i", f.good, "-l", "semevl"], fragment="--labels")
    add("prompts", "--labels empty file", ["prompts", "-i", f.good, "-l", f.empty], fragment="--labels")
    add("prompts", "--labels with a label twice", ["prompts", "-i", f.good, "-l", bad("dup.txt", "A\nA\n")], fragment="--labels")
    add("prompts", "--labels a directory", ["prompts", "-i", f.good, "-l", d], fragment="--labels")
    add("prompts", "--labels invalid UTF-8", ["prompts", "-i", f.good, "-l", f.not_utf8], fragment="--labels")
    add("prompts", "--labels binary", ["prompts", "-i", f.good, "-l", f.binary], fragment="--labels")
    add("prompts", "--template unknown name", ["prompts", "-i", f.good, *semeval_labels, "-t", "fancy"], fragment="--template")
    add("prompts", "--template file with an unknown field", ["prompts", "-i", f.good, *semeval_labels, "-t", bad("t1.txt", "{sentense}")],
        fragment="--template")
    add("prompts", "--template file with a positional field", ["prompts", "-i", f.good, *semeval_labels, "-t", bad("t2.txt", "{} {0}")],
        fragment="--template")
    add("prompts", "--template file with a lone brace", ["prompts", "-i", f.good, *semeval_labels, "-t", bad("t3.txt", "{head")],
        fragment="--template")
    add("prompts", "--template rag without an index", ["prompts", "-i", f.good, *semeval_labels, "-t", "rag"], fragment="--index")
    add("prompts", "--index with a template without {examples}", ["prompts", "-i", f.good, *semeval_labels, "-t", "simple", "--index", f.index,
        "-o", keep()], fragment="--index")
    add("prompts", "--k without a retrieval template", ["prompts", "-i", f.good, *semeval_labels, "--k", "5"], fragment="--k")
    add("prompts", "--k 0", ["prompts", "-i", f.good, *semeval_labels, "-t", "rag", "--index", f.index, "--k", "0"], fragment="--k")
    add("prompts", "--k abc", ["prompts", "-i", f.good, *semeval_labels, "--k", "abc"], fragment="--k")
    add("prompts", "--task foo", ["prompts", "-i", f.good, *semeval_labels, "--task", "foo"], fragment="--task")
    add("prompts", "--task triplets --template rag", ["prompts", "-i", f.e2e, "--labels-from-data", "--task", "triplets", "-t", "rag"],
        fragment="--template")
    add("prompts", "--task triplets --format xml", ["prompts", "-i", f.e2e, "--labels-from-data", "--task", "triplets", "--format", "xml"],
        fragment="--format")
    add("prompts", "--format with the rc task", ["prompts", "-i", f.good, *semeval_labels, "--format", "json"], fragment="--format")
    add("prompts", "--shots 0", ["prompts", "-i", f.e2e, "--labels-from-data", "--task", "triplets", "--shots", "0"], fragment="--shots")
    add("prompts", "--shots with the rc task", ["prompts", "-i", f.good, *semeval_labels, "--shots", "2"], fragment="--shots")
    add("prompts", "--shots without a source", ["prompts", "-i", f.e2e, "--labels-from-data", "--task", "triplets", "--shots", "2"],
        fragment="--shots")
    add("prompts", "--shots-from missing", ["prompts", "-i", f.e2e, "--labels-from-data", "--task", "triplets", "--shots", "1",
        "--shots-from", d / "nope.jsonl"], fragment="--shots-from")
    add("prompts", "--shots-from with bad records", ["prompts", "-i", f.e2e, "--labels-from-data", "--task", "triplets", "--shots", "1",
        "--shots-from", f.binary], fragment="--shots-from")
    add("prompts", "--labels and --labels-from-data together", ["prompts", "-i", f.good, *semeval_labels, "--labels-from-data"],
        fragment="--labels")
    add("prompts", "--labels-from-data on records without labels", ["prompts", "-i", bad("unlabelled.jsonl",
        jsonl(dict(r, relation=None) for r in f.records)), "--labels-from-data", "-o", keep()], fragment="--labels-from-data")
    add("prompts", "--index missing", ["prompts", "-i", f.good, *semeval_labels, "-t", "rag", "--index", d / "no-index"], fragment="--index")
    add("prompts", "--index a file", ["prompts", "-i", f.good, *semeval_labels, "-t", "rag", "--index", f.good], fragment="--index")
    for name, files in _broken_indexes(f).items():
        idx = copy(f.index, s.dir() / "index")
        for file, data in files.items():
            if data is None:
                (idx / file).unlink()
            else:
                put(idx / file, data)
        add("prompts", f"index: {name}", ["prompts", "-i", f.good, *semeval_labels, "-t", "rag", "--index", idx, "-o", keep()],
            fragment="--index")
    for what, line in record_faults(f.records[0]):
        add("prompts", f"record: {what}", ["prompts", "-i", bad(f"rec-{what}.jsonl".replace(" ", "-").replace("*", ""), f.good.read_bytes() + line + b"\n"),
            *semeval_labels, "-o", keep()], fragment="line 9")
    add("prompts", "label not in the inventory", ["prompts", "-i", f.good, "-l", bad("two.txt", "A\nB\n"), "-o", keep()], fragment="not in")
    out = s.dir() / "o.jsonl"
    add("prompts", "blank lines only", ["prompts", "-i", bad("blank.jsonl", "\n \n\t\n\r\n"), *semeval_labels, "-o", out], expect=0,
        check=records_out(out, 0))
    out = s.dir() / "o.jsonl"
    add("prompts", "blank lines between records", ["prompts", "-i", bad("gaps.jsonl", f.good.read_text().replace("\n", "\n\n  \n")),
        *semeval_labels, "-o", out], expect=0, check=records_out(out, 8))
    out = s.dir() / "o.jsonl"
    add("prompts", "BOM before the first record", ["prompts", "-i", bad("bom.jsonl", b"\xef\xbb\xbf" + f.good.read_bytes()), *semeval_labels,
        "-o", out], expect=0, check=records_out(out, 8))
    out = s.dir() / "o.jsonl"
    add("prompts", "CRLF line ends", ["prompts", "-i", bad("crlf.jsonl", f.good.read_bytes().replace(b"\n", b"\r\n")), *semeval_labels,
        "-o", out], expect=0, check=records_out(out, 8))
    out = s.dir() / "o.jsonl"
    add("prompts", "no final newline", ["prompts", "-i", bad("nonl.jsonl", f.good.read_bytes().rstrip(b"\n")), *semeval_labels, "-o", out],
        expect=0, check=records_out(out, 8))
    out = s.dir() / "o.jsonl"
    add("prompts", "--skip-invalid skips and counts", ["prompts", "-i", bad("mix.jsonl", f.good.read_bytes() + b"{bad\n[1]\n"), *semeval_labels,
        "--skip-invalid", "-o", out], expect=0, check=records_out(out, 8))
    out = s.dir() / "o.jsonl"
    add("prompts", "empty input", ["prompts", "-i", f.empty, *semeval_labels, "-o", out], expect=0, check=records_out(out, 0))
    add("prompts", "binary input", ["prompts", "-i", f.binary, *semeval_labels, "-o", keep()], fragment="line 1")
    add("prompts", "input is a directory", ["prompts", "-i", d, *semeval_labels], fragment="--input")
    add("prompts", "input missing", ["prompts", "-i", d / "nope.jsonl", *semeval_labels], fragment="--input")
    add("prompts", "unreadable input (uid 65534)", ["prompts", "-i", unreadable, *semeval_labels], nobody=True)
    own = copy(f.good, s.dir() / "in.jsonl")
    add("prompts", "-o is the input file", ["prompts", "-i", own, *semeval_labels, "-o", own], fragment="input")
    add("prompts", "-o a directory", ["prompts", "-i", f.good, *semeval_labels, "-o", s.dir()], fragment="directory")
    add("prompts", "-o under a file", ["prompts", "-i", f.good, *semeval_labels, "-o", under_file])
    add("prompts", "end-to-end records to the rc task", ["prompts", "-i", f.e2e, *semeval_labels, "-o", keep()], fragment="head")
    add("prompts", "rc records to the triplets task", ["prompts", "-i", f.good, "--task", "triplets", *semeval_labels], fragment="triplets")
    add("prompts", "markup in a record id is printed literally", ["prompts", *semeval_labels], fragment="[bold]x[/b]",
        stdin=json.dumps(dict(f.records[0], id="[bold]x[/b]", relation="[red]nope")).encode() + b"\n")
    out = s.dir() / "o.jsonl"
    huge = dict(f.records[0], text=f.records[0]["text"] + " filler" * 800_000)
    add("prompts", "one 5 MB record", ["prompts", "-i", put(d / "huge.jsonl", jsonl([huge])), *semeval_labels, "-o", out], expect=0,
        check=records_out(out, 1))

    # ------------------------------------------------------------------------------ finetune
    small = ["-i", f.prompts, "--max-steps", "1", "--batch-size", "4", "--dtype", "float32", "--device", "cpu"]

    def ft(what, *args, fragment=None, **options):
        add("finetune", what, ["finetune", *args], fragment=fragment, **options)

    ft("--method foo", "--method", "foo", "-m", f.llama, "-o", s.dir() / "a", *small, fragment="--method")
    ft("-m a missing folder", "-m", d / "no-model", "-o", s.dir() / "a", *small, fragment="no-model")
    ft("-m a data file", "-m", f.good, "-o", s.dir() / "a", *small)
    broken = _broken_models(s, f)
    for name, folder in broken.items():
        if name.startswith("model:") or name.startswith("adapter: relcli.json") and "labels" in name:
            ft(f"-m {name}", "-m", folder, "-o", s.dir() / "a", *small)
    ft("-o an existing file", "-m", f.llama, "-o", keep(), *small, fragment="--output")
    ft("-o under a file", "-m", f.llama, "-o", under_file, *small, fragment="--output")
    mine = s.dir() / "mine"
    put(mine / "notes.txt", "my notes")
    ft("-o a folder relcli did not write (lora)", "-m", f.llama, "-o", mine, *small, fragment="--output")
    mine = s.dir() / "mine"
    put(mine / "notes.txt", "my notes")
    ft("-o a folder relcli did not write (classifier)", "--method", "classifier", "-m", f.bert, "-o", mine, "-i", f.good,
       "--epochs", "1", "--dtype", "float32", "--device", "cpu", "-l", "semeval", fragment="--output")
    ft("-o an index folder (lora)", "-m", f.llama, "-o", copy(f.index, s.dir() / "index"), *small, fragment="--output")
    ft("-o in a folder it cannot write (uid 65534)", "-m", f.llama, "-o", nobody_dir / "a", *small, nobody=True)
    ft("-i missing", "-m", f.llama, "-o", s.dir() / "a", "-i", d / "nope.jsonl", fragment="--input")
    ft("-i empty", "-m", f.llama, "-o", s.dir() / "a", "-i", f.empty, "--dtype", "float32")
    ft("-i binary", "-m", f.llama, "-o", s.dir() / "a", "-i", f.binary, fragment="line 1")
    ft("prompts without a completion", "-m", f.llama, "-o", s.dir() / "a", "-i",
       bad("nocompletion.jsonl", jsonl([{"prompt": "x"}])), fragment="completion")
    ft("a completion outside the inventory", "-m", f.llama, "-o", s.dir() / "a", "-i",
       bad("outside.jsonl", jsonl([{"prompt": "x", "completion": "Nope", "template": "compact", "labels": "semeval"}])), fragment="--labels")
    ft("RC records instead of prompts", "-m", f.llama, "-o", s.dir() / "a", "-i", f.good, fragment="prompt")
    for option, value in (("--epochs", "0"), ("--epochs", "-1"), ("--epochs", "abc"), ("--epochs", "nan"), ("--epochs", "inf"),
                          ("--lr", "0"), ("--lr", "abc"), ("--lr", "nan"), ("--batch-size", "0"),
                          ("--batch-size", str(10**30)), ("--lora-r", "0"), ("--lora-r", str(10**12)), ("--lora-alpha", "0"),
                          ("--lora-dropout", "1.5"), ("--warmup-ratio", "2"), ("--label-smoothing", "-1"), ("--weight-decay", "-1"),
                          ("--grad-accum", "0"), ("--max-steps", "0"), ("--max-steps", str(10**30)), ("--max-length", "2"),
                          ("--max-length", str(10**30)), ("--limit", "0"), ("--save-steps", "0"), ("--seed", "abc"),
                          ("--seed", "-1"), ("--head-lr", "0")):
        target = s.dir() / "a"
        ft(f"{option} {value}", "-m", f.llama, "-o", target, *[a for a in small if a not in ("--max-steps", "1")],
           *(["--max-steps", "1"] if option != "--max-steps" else []), option, value, fragment=option)
    ft("--scheduler foo", "-m", f.llama, "-o", s.dir() / "a", *small, "--scheduler", "foo", fragment="--scheduler")
    ft("--preset foo", "-m", f.llama, "-o", s.dir() / "a", *small, "--preset", "foo", fragment="--preset")
    ft("--quantize foo", "-m", f.llama, "-o", s.dir() / "a", *small, "--quantize", "foo", fragment="--quantize")
    ft("--dtype foo", "-m", f.llama, "-o", s.dir() / "a", *small[:-4], "--dtype", "foo", fragment="--dtype")
    ft("--device foo", "-m", f.llama, "-o", s.dir() / "a", *small[:-2], "--device", "foo", fragment="--device")
    ft("--device cuda without a GPU", "-m", f.llama, "-o", s.dir() / "a", *small[:-2], "--device", "cuda", fragment="--device")
    ft("--lora-targets naming no module", "-m", f.llama, "-o", s.dir() / "a", *small, "--lora-targets", "no_such_proj",
       fragment="--lora-targets")
    ft("--lora-targets empty", "-m", f.llama, "-o", s.dir() / "a", *small, "--lora-targets", "", fragment="--lora-targets")
    for option in (["--pooling", "cls"], ["--typed-markers"], ["--head-lr", "0.1"], ["--classifier-lora"]):
        ft(f"{option[0]} with the lora method", "-m", f.llama, "-o", s.dir() / "a", *small, *option, fragment=option[0])
    classifier = ["--method", "classifier", "-m", f.bert, "-i", f.good, "-l", "semeval", "--epochs", "1", "--dtype", "float32"]
    for option in (["--scheduler", "linear"], ["--chat"], ["--quantize", "4bit"], ["--resume"], ["--template", "compact"],
                   ["--lora-targets", "query"], ["--preset", "paper-t5"]):
        ft(f"{option[0]} with the classifier method", *classifier, "-o", s.dir() / "c", *option, fragment=option[0])
    ft("classifier --pooling foo", *classifier, "-o", s.dir() / "c", "--pooling", "foo", fragment="--pooling")
    ft("classifier --epochs 1.5", *classifier[:-4], "--epochs", "1.5", "--dtype", "float32", "-o", s.dir() / "c", fragment="--epochs")
    ft("classifier on smollm2-135m (a generator)", "--method", "classifier", "-m", "smollm2-135m", "-i", f.good, "-o", s.dir() / "c",
       fragment="encoder")
    ft("classifier on end-to-end records", "--method", "classifier", "-m", f.bert, "-i", f.e2e, "-o", s.dir() / "c", "--dtype", "float32",
       "-l", bad("labels-e2e.txt", "Work_For\n"))
    ft("classifier: a relation outside --labels", "--method", "classifier", "-m", f.bert, "-i", f.good, "-o", s.dir() / "c",
       "-l", bad("labels-ab.txt", "A\nB\n"), "--dtype", "float32", fragment="not in")
    ft("--template unknown", "-m", f.llama, "-o", s.dir() / "a", *small, "--template", "fancy", fragment="--template")
    ft("--labels unknown", "-m", f.llama, "-o", s.dir() / "a", *small, "--labels", "semevl", fragment="--labels")
    ft("--eval missing", "-m", f.llama, "-o", s.dir() / "a", *small, "--eval", d / "nope.jsonl", fragment="--eval")
    ft("--eval malformed", "-m", f.llama, "-o", s.dir() / "a", *small, "--eval", f.binary, fragment="--eval")
    ft("--eval of RC records (not prompts)", "-m", f.llama, "-o", s.dir() / "a", *small, "--eval", f.good, fragment="--eval")
    ft("--resume without checkpoints", "-m", f.llama, "-o", s.dir() / "a", *small, "--resume", fragment="--resume")
    ft("-o an adapter that has checkpoints, without --resume", "-m", f.llama, "-o", copy(f.adapter, s.dir() / "a"), *small,
       fragment="--resume")
    ft("--resume with LoRA settings other than the checkpoint's", "-m", f.llama, "-o", copy(f.adapter, s.dir() / "a"), *small,
       "--resume", "--max-steps", "25", fragment="--lora-r")
    resumed = copy(f.adapter, s.dir() / "a")
    ft("--resume with the checkpoint's settings", "-m", f.llama, "-o", resumed, *small, "--resume", "--max-steps", "25",
       "--lora-r", "8", "--lora-alpha", "16", "--lr", "1e-2", expect=0, replaces=(resumed,),
       check=lambda o: None if json.loads((resumed / "relcli.json").read_text())["training"]["resumed_from"] == "checkpoint-24"
       else "did not resume from checkpoint-24")
    ft("stdin binary", "-m", f.llama, "-o", s.dir() / "a", *small[2:], stdin=f.binary.read_bytes())
    out = s.dir() / "a"
    ft("a good run (reference: the guard works both ways)", "-m", f.llama, "-o", out, *small, expect=0,
       check=lambda o: None if (out / "relcli.json").is_file() else "no relcli.json written")
    return broken


def _broken_indexes(f: Fixtures) -> dict[str, dict[str, bytes | None]]:
    """name -> {file: new bytes, or None to delete} turning the good index into a broken one."""
    meta = json.loads((Path(f.index) / "index.json").read_text())
    records = [json.loads(line) for line in (Path(f.index) / "records.jsonl").read_text().splitlines()]
    return {
        "index.json not JSON": {"index.json": b"{"},
        "index.json a list": {"index.json": b"[]"},
        "index.json without embed": {"index.json": json.dumps({k: v for k, v in meta.items() if k != "embed"}).encode()},
        "index.json with an unknown embed": {"index.json": json.dumps(dict(meta, embed="bold")).encode()},
        "index.json count too high": {"index.json": json.dumps(dict(meta, count=meta["count"] + 1)).encode()},
        "index.json dimension a string": {"index.json": json.dumps(dict(meta, dimension="32")).encode()},
        "index.json naming a missing embedder": {"index.json": json.dumps(dict(meta, model="/nonexistent/embedder")).encode()},
        "index.json missing": {"index.json": None},
        "records.jsonl missing": {"records.jsonl": None},
        "records.jsonl with a line not JSON": {"records.jsonl": (Path(f.index) / "records.jsonl").read_bytes()[:-40] + b"\n"},
        "records without ids": {"records.jsonl": jsonl({k: v for k, v in r.items() if k != "id"} for r in records)},
        "records that are lists": {"records.jsonl": jsonl([[1]] * len(records))},
        "index.hnsw junk": {"index.hnsw": b"junk"},
        "index.hnsw missing": {"index.hnsw": None},
    }


def _broken_models(s: Sweep, f: Fixtures) -> dict[str, Path]:
    """Model, adapter and classifier folders each broken in one way."""
    tokenizer_files = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
    made = {}

    def variant(name: str, source: str, files: dict[str, bytes | None]) -> None:
        folder = copy(source, s.dir() / "model")
        for file, data in files.items():
            if data is None:
                (folder / file).unlink(missing_ok=True)
            else:
                put(folder / file, data)
        made[name] = folder

    relcli_json = json.loads((Path(f.adapter) / "relcli.json").read_text())
    head = json.loads((Path(f.classifier) / "relcli.json").read_text())
    variant("model: config.json not JSON", f.llama, {"config.json": b"{"})
    variant("model: config.json empty object", f.llama, {"config.json": b"{}"})
    variant("model: no weights", f.llama, {"model.safetensors": None})
    variant("model: corrupt weights", f.llama, {"model.safetensors": b"junk" * 100})
    variant("model: no tokenizer", f.llama, dict.fromkeys(tokenizer_files))
    variant("adapter: no adapter_model.safetensors", f.adapter, {"adapter_model.safetensors": None})
    variant("adapter: adapter_config.json not JSON", f.adapter, {"adapter_config.json": b"{"})
    variant("adapter: its base model is gone", f.adapter, {"relcli.json": json.dumps(dict(relcli_json, base_model=str(s.work / "gone"))).encode()})
    variant("adapter: relcli.json not JSON", f.adapter, {"relcli.json": b"{"})
    variant("adapter: relcli.json invalid UTF-8", f.adapter, {"relcli.json": b'{"kind": "gen\xffrator"}'})
    variant("adapter: relcli.json a list", f.adapter, {"relcli.json": b"[]"})
    variant("adapter: relcli.json kind foo", f.adapter, {"relcli.json": json.dumps(dict(relcli_json, kind="foo")).encode()})
    variant("adapter: relcli.json labels numbers", f.adapter, {"relcli.json": json.dumps(dict(relcli_json, labels=[1, 2])).encode()})
    variant("adapter: relcli.json labels empty", f.adapter, {"relcli.json": json.dumps(dict(relcli_json, labels=[])).encode()})
    variant("adapter: relcli.json template a number", f.adapter, {"relcli.json": json.dumps(dict(relcli_json, template=5)).encode()})
    variant("adapter: relcli.json template with an unknown field", f.adapter,
            {"relcli.json": json.dumps(dict(relcli_json, template="{nope}")).encode()})
    variant("adapter: relcli.json without base_model", f.adapter,
            {"relcli.json": json.dumps({k: v for k, v in relcli_json.items() if k != "base_model"}).encode()})
    variant("adapter: relcli.json chat a string", f.adapter, {"relcli.json": json.dumps(dict(relcli_json, chat="no")).encode()})
    variant("classifier: no head.safetensors", f.classifier, {"head.safetensors": None})
    variant("classifier: head.safetensors junk", f.classifier, {"head.safetensors": b"junk" * 10})
    variant("classifier: relcli.json without encoder settings", f.classifier,
            {"relcli.json": json.dumps(dict(head, encoder={})).encode()})
    variant("classifier: relcli.json pooling foo", f.classifier,
            {"relcli.json": json.dumps(dict(head, encoder=dict(head["encoder"], pooling="foo"))).encode()})
    variant("classifier: more labels than the head has", f.classifier,
            {"relcli.json": json.dumps(dict(head, labels=head["labels"] + ["Extra"])).encode()})
    return made


def build_extract(s: Sweep, f: Fixtures, broken: dict[str, Path]) -> None:
    add, d = s.add, f.dir

    def keep(name: str = "out.jsonl", data: bytes = b"keep: an earlier run's output\n") -> Path:
        return put(s.dir() / name, data)

    def bad(name: str, data: bytes | str) -> Path:
        return put(d / "bad" / name, data)

    cpu = ["--dtype", "float32", "--device", "cpu"]
    llama = ["-m", f.llama, "-t", "compact", "-l", "semeval", *cpu]
    adapter = ["-m", f.adapter, *cpu]
    knn = ["--decode", "knn", "--index", f.index, *cpu]
    under_file = f.good / "x.jsonl"

    def ex(what, *args, fragment=None, **options):
        add("extract", what, ["extract", *args], fragment=fragment, **options)

    # A reference run, for the cases that compare with it.
    reference = s.dir() / "reference.jsonl"
    ex("reference run (adapter, 8 records)", *adapter, "-i", f.good, "-o", reference, expect=0, check=records_out(reference, 8))
    ex("no model and no kNN", "-i", f.good, fragment="--model")
    ex("-m a missing folder", "-m", d / "no-model", "-i", f.good, "-o", keep(), fragment="no-model")
    ex("-m a hub id that is not there (offline)", "-m", "nobody/no-such-model", "-t", "simple", "-l", "semeval", "-i", f.good)
    ex("--decode foo", *adapter, "--decode", "foo", "-i", f.good, fragment="--decode")
    ex("--decode knn with a model", *adapter, "--decode", "knn", "--index", f.index, "-i", f.good, fragment="--decode")
    ex("--decode knn without an index", "--decode", "knn", "-i", f.good, fragment="--index")
    ex("--task foo", *adapter, "--task", "foo", "-i", f.good, fragment="--task")
    ex("--task triplets on an rc adapter", *adapter, "--task", "triplets", "-i", f.e2e, fragment="--task")
    ex("--template unknown", "-m", f.llama, "-t", "fancy", "-l", "semeval", *cpu, "-i", f.good, fragment="--template")
    ex("a base model without --labels", "-m", f.llama, "-t", "compact", *cpu, "-i", f.good, fragment="--labels")
    ex("--labels unknown", "-m", f.llama, "-t", "compact", "-l", "semevl", *cpu, "-i", f.good, fragment="--labels")
    ex("--template rag without an index", "-m", f.llama, "-t", "rag", "-l", "semeval", *cpu, "-i", f.good, fragment="--index")
    ex("--k 0", *knn, "--k", "0", "-i", f.good, fragment="--k")
    ex("--k without retrieval", *llama, "--k", "5", "-i", f.good, fragment="--k")
    for value in ("0", "-1", "abc", str(10**30)):
        ex(f"--batch-size {value}", *adapter, "--batch-size", value, "-i", f.good, "-o", keep(), fragment="--batch-size")
    ex("--max-new-tokens 0", *adapter, "--decode", "generate", "--max-new-tokens", "0", "-i", f.good, fragment="--max-new-tokens")
    ex("--max-new-tokens with constrained decoding", *adapter, "--max-new-tokens", "5", "-i", f.good, fragment="--max-new-tokens")
    ex("--max-new-tokens 10**30", *adapter, "--decode", "generate", "--max-new-tokens", str(10**30), "-i", f.good,
       fragment="--max-new-tokens")
    for option, value in (("--dtype", "foo"), ("--dtype", ""), ("--device", "foo"), ("--device", "cuda"), ("--device", "cuda:x"),
                          ("--device", "mps"), ("--quantize", "foo"), ("--quantize", "3bit")):
        ex(f"{option} {value!r}", "-m", f.adapter, option, value, "-i", f.good, "-o", keep(), fragment=option)
    ex("--format xml (triplets)", "-m", f.llama, "--task", "triplets", "-l", "semeval", "--format", "xml", *cpu, "-i", f.e2e,
       fragment="--format")
    ex("--format with the rc task", *adapter, "--format", "json", "-i", f.good, fragment="--format")
    ex("--shots with the rc task", *adapter, "--shots", "2", "-i", f.good, fragment="--shots")
    for value in ("0/2", "3/2", "abc", "1/0", "2/-1", "1/2/3", "auto", "", "1.5/2"):
        ex(f"--shard {value!r}", *adapter, "--shard", value, "-i", f.good, "-o", keep(), fragment="--shard")
    ex("--shard reading stdin", *adapter, "--shard", "1/2", stdin=f.good.read_bytes(), fragment="--shard")
    ex("--resume without -o", *adapter, "--resume", "-i", f.good, fragment="--resume")
    own = copy(f.good, s.dir() / "in.jsonl")
    ex("--resume into the input file", *adapter, "--resume", "-i", own, "-o", own, fragment="input")
    ex("--resume into a file that is not relcli output", *adapter, "--resume", "-i", f.good, "-o", keep(data=b"[1, 2]\n"),
       fragment="--output")
    ex("--resume into another input's output", *adapter, "--resume", "-i", f.good, "-o",
       keep(data=jsonl([dict(f.records[3], predicted="Other")])), fragment="--output")
    ex("--resume into an output longer than the input", *adapter, "--resume", "-i", f.good, "-o",
       keep(data=jsonl([dict(r, predicted="Other") for r in f.records * 2])), fragment="--output")
    ex("--resume into a folder", *adapter, "--resume", "-i", f.good, "-o", s.dir(), fragment="directory")
    torn = s.dir() / "torn.jsonl"
    ex("--resume after a torn last line", *adapter, "--resume", "-i", f.good, "-o", torn, expect=0, replaces=(torn,),
       before=lambda: put(torn, reference.read_bytes()[:-25]), check=same_as(torn, reference))
    done = s.dir() / "done.jsonl"
    ex("--resume of a finished output changes nothing", *adapter, "--resume", "-i", f.good, "-o", done, expect=0,
       before=lambda: put(done, reference.read_bytes()), check=same_as(done, reference))
    ex("-o a directory", *adapter, "-i", f.good, "-o", s.dir(), fragment="directory")
    ex("-o under a file", *adapter, "-i", f.good, "-o", under_file, fragment="--output")
    own = copy(f.good, s.dir() / "in.jsonl")
    ex("-o is the input file", *adapter, "-i", own, "-o", own, fragment="input")
    ex("-i missing", *adapter, "-i", d / "nope.jsonl", "-o", keep(), fragment="--input")
    ex("-i a directory", *adapter, "-i", d, fragment="--input")
    out = s.dir() / "o.jsonl"
    ex("-i empty: an empty output", *adapter, "-i", f.empty, "-o", out, expect=0, check=records_out(out, 0))
    ex("-i binary", *adapter, "-i", f.binary, "-o", keep(), fragment="line 1")
    ex("-i invalid UTF-8", *adapter, "-i", f.not_utf8, "-o", keep(), fragment="line 1")
    ex("-i with a BOM", *adapter, "-i", bad("bom-x.jsonl", b"\xef\xbb\xbf" + f.good.read_bytes()), expect=0, check=stdout_records(8))
    ex("-i with CRLF and blank lines", *adapter, "-i", bad("crlf-x.jsonl", f.good.read_bytes().replace(b"\n", b"\r\n\r\n")), expect=0,
       check=stdout_records(8))
    ex("a malformed line 9 after 8 good ones: -o unchanged", *adapter, "-i", bad("late.jsonl", f.good.read_bytes() + b"{oops\n"),
       "-o", keep(), fragment="line 9")
    ex("a span past the text", *adapter, "-i", bad("span-x.jsonl", jsonl([changed(f.records[0], "head.end", 500)])), "-o", keep(),
       fragment="line 1")
    ex("end-to-end records to an rc adapter", *adapter, "-i", f.e2e, "-o", keep(), fragment="head")
    ex("--skip-invalid skips and counts", *adapter, "-i", bad("mix-x.jsonl", f.good.read_bytes() + b"{oops\n[1]\n"), "--skip-invalid",
       expect=0, check=stdout_records(8))
    ex("markup in a missing path", *adapter, "-i", d / "[bold]x[/b].jsonl", fragment="[bold]x[/b]")
    for name, folder in broken.items():
        ex(f"-m {name}", "-m", folder, *(["-t", "compact", "-l", "semeval"] if name.startswith("model:") else []), *cpu, "-i", f.good,
           "-o", keep())
    for option in (["--template", "simple"], ["--decode", "generate"], ["--k", "2"], ["--chat"], ["--max-new-tokens", "3"]):
        ex(f"{option[0]} with a classifier", "-m", f.classifier, *cpu, "-i", f.good, *option, fragment=option[0])
    for option in (["--chat"], ["--max-new-tokens", "3"], ["--quantize", "4bit"], ["--labels", "semeval"]):
        ex(f"{option[0]} with the kNN vote", *knn, "-i", f.good, *option, fragment=option[0])
    out = s.dir() / "o.jsonl"
    ex("classifier: a good run", "-m", f.classifier, *cpu, "-i", f.good, "-o", out, expect=0, check=records_out(out, 8))
    out = s.dir() / "o.jsonl"
    ex("kNN: a good run", *knn, "-i", f.good, "-o", out, expect=0, check=records_out(out, 8))
    for name, files in _broken_indexes(f).items():
        idx = copy(f.index, s.dir() / "index")
        for file, data in files.items():
            if data is None:
                (idx / file).unlink()
            else:
                put(idx / file, data)
        ex(f"kNN index: {name}", "--decode", "knn", "--index", idx, *cpu, "-i", f.good, "-o", keep(), fragment="--index")
    ex("--chat with a model that has no chat template", *llama, "--chat", "-i", f.good, fragment="--chat")
    add("finetune", "--chat with a model that has no chat template", ["finetune", "-m", f.llama, "-o", s.dir() / "a", "-i", f.prompts,
        "--max-steps", "1", *cpu, "--chat"], fragment="--chat")
    smol = ["-m", "smollm2-135m", *cpu]
    out = s.dir() / "o.jsonl"
    ex("smollm2-135m: a good zero-shot run on 2 records", *smol, "-t", "simple", "-l", "semeval", "-i",
       bad("two.jsonl", jsonl(f.records[:2])), "-o", out, expect=0, check=records_out(out, 2))
    ex("smollm2-135m: --template rag without an index", *smol, "-t", "rag", "-l", "semeval", "-i", f.good, "-o", keep(),
       fragment="--index")
    ex("smollm2-135m: --decode generate --max-new-tokens 0", *smol, "-t", "simple", "-l", "semeval", "--decode", "generate",
       "--max-new-tokens", "0", "-i", f.good, fragment="--max-new-tokens")
    ex("smollm2-135m: --labels a file with a label twice", *smol, "-t", "simple", "-l", bad("dup2.txt", "A\nB\nA\n"), "-i", f.good,
       fragment="--labels")
    add("finetune", "smollm2-135m: --lora-targets naming no module", ["finetune", "-m", "smollm2-135m", "-o", s.dir() / "a", "-i",
        f.prompts, "--max-steps", "1", *cpu, "--lora-targets", "q_proj,nope"], fragment="--lora-targets")
    long_text = " ".join(["the configuration of elements"] * 1500)
    huge = dict(f.records[0], text=long_text, head=span(long_text, "configuration"), tail=span(long_text, "elements"))
    ex("a record longer than the model's context", *adapter, "-i", bad("long.jsonl", jsonl([huge])), "-o", keep(), fragment="context")


def same_as(path: Path, reference: Path):
    return lambda out: None if path.read_bytes() == reference.read_bytes() else f"{path.name} differs from a full run"


def build_score_index(s: Sweep, f: Fixtures) -> None:
    add, d = s.add, f.dir

    def keep(name: str = "out.jsonl", data: bytes = b"keep: an earlier run's output\n") -> Path:
        return put(s.dir() / name, data)

    def bad(name: str, data: bytes | str) -> Path:
        return put(d / "bad" / name, data)

    under_file = f.good / "x.jsonl"
    first = dict(f.records[0], predicted="Other")

    def sc(what, *args, fragment=None, **options):
        add("score", what, ["score", *args], fragment=fragment, **options)

    sc("a good run (json)", "-i", f.preds, "--format", "json", expect=0,
       check=lambda o: None if json.loads(o.stdout)["n"] == 8 else "wrong n")
    sc("--scheme foo", "-i", f.preds, "--scheme", "foo", fragment="--scheme")
    sc("--format foo", "-i", f.preds, "--format", "foo", fragment="--format")
    sc("--confusion a directory", "-i", f.preds, "--confusion", s.dir(), fragment="--confusion")
    sc("--confusion .xyz", "-i", f.preds, "--confusion", s.dir() / "c.xyz", fragment="--confusion")
    sc("--confusion under a file", "-i", f.preds, "--confusion", f.good / "c.png", fragment="--confusion")
    sc("--confusion kept when a record is bad", "-i", bad("score-late.jsonl", f.preds.read_bytes() + b"{x\n"), "--confusion",
       keep("c.png", b"an old picture"), fragment="line 9")
    sc("--labels unknown", "-i", f.preds, "--labels", "semevl", fragment="--labels")
    sc("a record without relation", "-i", bad("s1.jsonl", jsonl([changed(first, "relation", DROP)])), fragment="relation")
    sc("a record without predicted", "-i", f.good, fragment="predicted")
    sc("predicted a number", "-i", bad("s2.jsonl", jsonl([changed(first, "predicted", 3)])), fragment="predicted")
    sc("rc and end-to-end records mixed", "-i", bad("s3.jsonl", f.preds.read_bytes() + f.e2e_preds.read_bytes()), fragment="mixed")
    sc("predicted_triplets not a list", "-i", bad("s4.jsonl", jsonl([dict(f.e2e_rows[0], predicted_triplets="x")])),
       fragment="predicted_triplets")
    sc("a triplet without a head", "-i", bad("s5.jsonl", jsonl([dict(f.e2e_rows[0], predicted_triplets=[{"relation": "r"}])])),
       fragment="head")
    sc("a triplet relation a number", "-i", bad("s6.jsonl", jsonl([dict(f.e2e_rows[0], predicted_triplets=[
        dict(f.e2e_rows[0]["triplets"][0], relation=1)])])), fragment="relation")
    sc("empty input: nothing to score", "-i", f.empty, fragment="no records")
    sc("every line skipped: nothing to score", "-i", f.binary, "--skip-invalid", fragment="no records")
    sc("--scheme triplets on rc records", "-i", f.preds, "--scheme", "triplets", fragment="--scheme")
    sc("--scheme semeval on end-to-end records", "-i", f.e2e_preds, "--scheme", "semeval", fragment="--scheme")
    sc("--negative with end-to-end records", "-i", f.e2e_preds, "--negative", "Other", fragment="--negative")
    sc("-i missing", "-i", d / "nope.jsonl", fragment="--input")
    sc("-i a directory", "-i", d, fragment="--input")
    sc("-i binary", "-i", f.binary, fragment="line 1")
    sc("-i invalid UTF-8", "-i", f.not_utf8, fragment="line 1")
    sc("stdin binary", stdin=f.binary.read_bytes(), fragment="line 1")
    sc("BOM and CRLF", "-i", bad("s-bom.jsonl", b"\xef\xbb\xbf" + f.preds.read_bytes().replace(b"\n", b"\r\n")), "--format", "json",
       expect=0)
    sc("markup in labels is printed literally", "-i", bad("s-markup.jsonl", jsonl([dict(first, relation="[bold]A[/b]", predicted="[red]B")])),
       expect=0, check=lambda o: None if "[bold]A[/b]" in o.stderr else "label markup was not printed literally")
    image = s.dir() / "c.png"
    sc("--confusion a good run", "-i", f.preds, "--confusion", image, expect=0, check=lambda o: None if image.is_file() else "no image")

    # --------------------------------------------------------------------------------- index
    cpu = ["--dtype", "float32", "--device", "cpu"]
    emb = ["--model", f.embedder, *cpu, "--m", "8", "--ef-construction", "20"]

    def ix(what, *args, fragment=None, **options):
        add("index", what, ["index", *args], fragment=fragment, **options)

    old_index = lambda: copy(f.index, s.dir() / "index")
    ix("-o missing", "-i", f.good, *emb, fragment="--output")
    ix("-o an existing file", "-i", f.good, *emb, "-o", keep(), fragment="--output")
    mine = s.dir() / "mine"
    put(mine / "notes.txt", "my notes")
    ix("-o a folder that is no index", "-i", f.good, *emb, "-o", mine, fragment="--output")
    ix("-o under a file", "-i", f.good, *emb, "-o", f.good / "idx", fragment="--output")
    ix("--model a missing folder", "-i", f.good, "--model", d / "no-embedder", *cpu, "-o", old_index(), fragment="no-embedder")
    ix("--model a data file", "-i", f.good, "--model", f.good, *cpu, "-o", s.dir() / "idx", fragment="--model")
    ix("--embed foo", "-i", f.good, *emb, "--embed", "foo", "-o", old_index(), fragment="--embed")
    for option, value in (("--m", "1"), ("--m", "abc"), ("--m", str(10**30)), ("--ef-construction", "0"),
                          ("--ef-construction", str(10**30)), ("--batch-size", "0"), ("--batch-size", str(10**30))):
        ix(f"{option} {value}", "-i", f.good, *emb, option, value, "-o", old_index(), fragment=option)
    ix("--append to a missing folder", "-i", f.good, *emb, "--append", "-o", s.dir() / "none", fragment="--output")
    ix("--append to a folder that is no index", "-i", f.good, *emb, "--append", "-o", mine, fragment="--output")
    ix("--append with another --embed", "-i", f.good, *emb, "--append", "--embed", "marked", "-o", old_index(), fragment="--embed")
    ix("--append with --m", "-i", f.good, "--model", f.embedder, *cpu, "--m", "16", "--append", "-o", old_index(), fragment="--m")
    ix("empty input over an existing index", "-i", f.empty, *emb, "-o", old_index(), fragment="no records")
    ix("a bad record late, over an existing index", "-i", bad("late-i.jsonl", f.good.read_bytes() * 40 + b"{x\n"), *emb,
       "--batch-size", "16", "-o", old_index(), fragment="line 321")
    ix("--embed marked with end-to-end records", "-i", f.e2e, *emb, "--embed", "marked", "-o", old_index(), fragment="'d1'")
    ix("--dtype foo", "-i", f.good, "--model", f.embedder, "--dtype", "foo", "-o", old_index(), fragment="--dtype")
    ix("--device foo", "-i", f.good, "--model", f.embedder, "--device", "foo", "-o", old_index(), fragment="--device")
    out = s.dir() / "idx"
    ix("--batch-size 10**12 reserves no memory for it", "-i", f.good, *emb, "--batch-size", str(10**12), "-o", out, expect=0,
       check=lambda o, out=out: None if (out / "index.json").is_file() else "no index")
    ix("-i missing", "-i", d / "nope.jsonl", *emb, "-o", old_index(), fragment="--input")
    ix("-i binary", "-i", f.binary, *emb, "-o", old_index(), fragment="line 1")
    out = s.dir() / "idx"
    ix("a good run", "-i", f.good, *emb, "-o", out, expect=0, check=lambda o: None if (out / "index.json").is_file() else "no index")


def build_kills(s: Sweep, f: Fixtures) -> None:
    """Kills between writes; each checks that the output is the old one or a complete new one."""
    add = s.add
    cpu = ["--dtype", "float32", "--device", "cpu"]
    big_ids = ids_of(f.big)

    def no_temps(folder: Path):
        return lambda o: next((f"left {p}" for p in folder.glob(".*.tmp")), None)

    def index_complete(n: int):
        def complete(path: Path) -> bool:
            from relcli.retrieval import Index

            return len(Index.load(path, device="cpu", dtype="float32")) == n
        return complete

    def artifact_complete(path: Path) -> bool:
        from relcli.artifacts import Artifact

        artifact = Artifact.read(path)
        weights = "head.safetensors" if artifact and artifact.kind == "classifier" else "adapter_model.safetensors"
        return artifact is not None and (path / weights).is_file()

    # extract -o over an existing output
    for sig, delay in ((signal.SIGKILL, 0.0), (signal.SIGKILL, 1.0), (signal.SIGINT, 0.3)):
        out = put(s.dir() / "preds.jsonl", jsonl(dict(r, predicted="Other") for r in f.records))
        old = snapshot(out)
        name = "SIGKILL" if sig == signal.SIGKILL else "SIGINT"
        add("extract", f"kill: {name} {delay} s into writing -o over an existing output",
            ["extract", "-m", f.adapter, *cpu, "-i", f.big, "-o", out], expect=(-9,) if sig == signal.SIGKILL else (130,),
            kill=Kill(sig, temp_beside(out), delay),
            check=all_of(old_or_complete_file(out, old, lambda p: ids_of(p) == big_ids),
                         no_temps(out.parent) if sig == signal.SIGINT else None))
    # extract --resume: killed, then resumed to the end
    for sig in (signal.SIGKILL, signal.SIGINT):
        out = s.dir() / "resumed.jsonl"
        name = "SIGKILL" if sig == signal.SIGKILL else "SIGINT"

        def prefix(o, out=out):
            got = [json.loads(line)["id"] for line in out.read_bytes().split(b"\n")[:-1]]
            return None if got == big_ids[:len(got)] else "the complete lines are not the input's first records"

        add("extract", f"kill: {name} during extract --resume", ["extract", "-m", f.adapter, *cpu, "-i", f.big, "-o", out, "--resume"],
            expect=(-9,) if sig == signal.SIGKILL else (130,), kill=Kill(sig, has_lines(out, 300)), replaces=(out,), check=prefix)
        add("extract", f"--resume after the {name}", ["extract", "-m", f.adapter, *cpu, "-i", f.big, "-o", out, "--resume"], expect=0,
            replaces=(out,), check=lambda o, out=out: None if ids_of(out) == big_ids else "resumed output is not every record once, in order")
    # convert and prompts -o over an existing output
    n_semeval = 8 * 1500
    for delay in (0.0, 0.05, 0.2):
        out = put(s.dir() / "train.jsonl", jsonl(f.records))
        old = snapshot(out)
        add("convert", f"kill: SIGKILL {delay} s into writing convert -o", ["convert", "semeval", f.semeval_big, "-o", out], expect=(-9, 0),
            kill=Kill(signal.SIGKILL, temp_beside(out), delay), replaces=(out,),
            check=old_or_complete_file(out, old, lambda p: lines_of(p) == n_semeval))
    out = put(s.dir() / "prompts.jsonl", b"old prompts\n")
    old = snapshot(out)
    add("prompts", "kill: SIGKILL while writing prompts -o", ["prompts", "-i", f.big, "-l", "semeval", "-o", out], expect=(-9, 0),
        kill=Kill(signal.SIGKILL, temp_beside(out)), replaces=(out,), check=old_or_complete_file(out, old, lambda p: lines_of(p) == 2000))
    # index -o over an existing index, and --append
    emb = ["--model", f.embedder, *cpu, "--batch-size", "64"]
    graph = ["--m", "8", "--ef-construction", "20"]
    for sig, delay, append in ((signal.SIGKILL, 0.0, False), (signal.SIGKILL, 0.5, False), (signal.SIGKILL, 1.5, False),
                               (signal.SIGINT, 0.5, False), (signal.SIGKILL, 0.5, True)):
        target = copy(f.index, s.dir() / "index")
        old = snapshot(target)
        name = "SIGKILL" if sig == signal.SIGKILL else "SIGINT"
        add("index", f"kill: {name} {delay} s into index -o over an existing index" + (" (--append)" if append else ""),
            ["index", "-i", f.big, *emb, "-o", target, *(["--append"] if append else graph)],
            expect=(-9, 0) if sig == signal.SIGKILL else (130, 0), kill=Kill(sig, temp_beside(target), delay), replaces=(target,),
            check=all_of(old_or_complete_dir(target, old, index_complete(2000 + (8 if append else 0))),
                         no_temps(target.parent) if sig == signal.SIGINT else None))
    # finetune -o over an existing adapter: killed while training, resumed; killed while swapping in
    train = ["-m", f.llama, "-i", f.big_prompts, *cpu, "--batch-size", "4", "--lr", "1e-3", "--save-steps", "40"]
    target = copy(f.adapter, s.dir() / "adapter", checkpoints=False)
    old = snapshot(target)
    add("finetune", "kill: SIGKILL after a checkpoint, -o an existing adapter", ["finetune", *train, "--max-steps", "400", "-o", target],
        expect=(-9,), kill=Kill(signal.SIGKILL, exists(target / "checkpoints" / "checkpoint-40" / "trainer_state.json"), 0.2),
        replaces=(target,), check=old_or_complete_dir(target, old, artifact_complete, ignore="checkpoints"))
    add("finetune", "--resume after the SIGKILL", ["finetune", *train, "--max-steps", "80", "-o", target, "--resume"], expect=0,
        replaces=(target,), check=lambda o, t=target: None if artifact_complete(t) and "checkpoint-40" in o.stderr + json.dumps(
            json.loads((t / "relcli.json").read_text())["training"]) else "not a complete adapter resumed from checkpoint-40")
    target = copy(f.adapter, s.dir() / "adapter", checkpoints=False)
    old = snapshot(target)
    add("finetune", "kill: SIGINT while training, -o an existing adapter", ["finetune", *train, "--max-steps", "400", "-o", target],
        expect=(130,), kill=Kill(signal.SIGINT, exists(target / "checkpoints" / "checkpoint-40" / "trainer_state.json")),
        replaces=(target,), check=all_of(old_or_complete_dir(target, old, artifact_complete, ignore="checkpoints"), no_temps(target.parent)))
    for delay in (0.0, 0.02):
        target = copy(f.adapter, s.dir() / "adapter", checkpoints=False)
        old = snapshot(target)
        add("finetune", f"kill: SIGKILL {delay} s into writing the new adapter over the old",
            ["finetune", *train, "--max-steps", "3", "-o", target], expect=(-9, 0),
            kill=Kill(signal.SIGKILL, temp_beside(target), delay), replaces=(target,),
            check=old_or_complete_dir(target, old, artifact_complete, ignore="checkpoints"))
    target = copy(f.classifier, s.dir() / "classifier")
    old = snapshot(target)
    add("finetune", "kill: SIGKILL while writing a classifier over the old one",
        ["finetune", "--method", "classifier", "-m", f.bert, "-i", f.good, "-l", "semeval", "--epochs", "1", *cpu, "-o", target],
        expect=(-9, 0), kill=Kill(signal.SIGKILL, temp_beside(target)), replaces=(target,),
        check=old_or_complete_dir(target, old, artifact_complete))


# -------------------------------------------------------------------------------------- report

def table(outcomes: list[Outcome], seconds: float) -> str:
    groups = ["convert", "prompts", "finetune", "extract", "score", "index"]
    rows = []
    for group in groups + ["all"]:
        mine = [o for o in outcomes if group in ("all", o.case.cmd)]
        if not mine:
            continue
        codes = Counter(o.rc for o in mine)
        rows.append([group, len(mine), ", ".join(f"{code}: {n}" for code, n in sorted(codes.items(), key=lambda kv: (kv[0] is None, kv[0]))),
                     sum(o.traceback for o in mine), sum(o.one_line is False for o in mine), sum(o.silent for o in mine),
                     sum(o.wrong_exit and not o.silent for o in mine), sum(bool(o.clobbered) for o in mine),
                     sum(bool(o.litter) for o in mine), sum(bool(o.problems) for o in mine), sum(o.case.kill is not None for o in mine)])
    head = ["subcommand", "cases", "exit codes", "tracebacks", "exit 2 not one `error:` line", "silent wrong (0 vs failure)",
            "other wrong exit", "lost or clobbered data", "temp files left", "other check failed", "of which kills"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        label = f"**{row[0]}**" if row[0] == "all" else row[0]
        lines.append("| " + " | ".join([label, *map(str, row[1:])]) + " |")
    lines.append(f"\n{len(outcomes)} cases in {seconds:.0f} s; exit -9 is SIGKILL, 130 an interrupt (SIGINT).")
    kept = Counter(o.after_kill for o in outcomes if o.after_kill)
    lines.append(f"Kills over an existing output left the old output {kept['old']} times and a complete new one {kept['new']} times "
                 "(a killed finetune keeps DIR/checkpoints beside the old adapter, for --resume).")
    failing = [o for o in outcomes if o.failed]
    lines.append(f"\nFailing cases: {len(failing)}\n")
    for o in failing:
        why = []
        if o.traceback:
            last = [line for line in o.stderr.splitlines() if line.strip()][-1:]
            why.append(f"traceback ({last[0][:150] if last else ''})")
        if o.one_line is False:
            why.append("not one error line: " + " / ".join(line[:100] for line in o.stderr.splitlines() if line.strip())[:300])
        if o.wrong_exit:
            why.append(f"exit {o.rc}, expected {'/'.join(map(str, o.case.expect))}" + (" (silent)" if o.silent else "")
                       + ("" if o.one_line is not None or o.traceback else f": {o.stderr.strip()[-200:]!r}"))
        if o.clobbered:
            why.append("changed: " + ", ".join(Path(p).name for p in o.clobbered))
        if o.litter:
            why.append("left: " + ", ".join(Path(p).name for p in o.litter))
        why += o.problems
        lines.append(f"- #{o.number} {o.case.cmd}: {o.case.what}: {'; '.join(why)}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", help="run only the cases whose subcommand or description contains this")
    parser.add_argument("--keep", type=Path, help="build the fixtures and outputs here and keep them (default: a temp dir, removed)")
    parser.add_argument("--json", type=Path, help="also write every case's outcome to this file")
    parser.add_argument("--list", action="store_true", help="list the cases and stop")
    parser.add_argument("--fresh", action="store_true", help="run every case as a new interpreter (slow: no forking of a warm one)")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="relcli-sweep-")) if args.keep is None else args.keep
    if args.keep is not None:
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
    try:
        print(f"building fixtures in {work} ...", file=sys.stderr)
        fixtures = Fixtures(work)
        sweep = Sweep(work, fresh=args.fresh)
        broken = build(sweep, fixtures)
        build_extract(sweep, fixtures, broken)
        build_score_index(sweep, fixtures)
        build_kills(sweep, fixtures)
        cases = [c for c in sweep.cases if not args.only or args.only in c.cmd or args.only in c.what]
        if args.list:
            for number, case in enumerate(cases, 1):
                print(f"{number:3d} {case.cmd:8s} {case.what}")
            return 0
        print(f"fixtures ready in {time.perf_counter() - started:.0f} s; {len(cases)} cases", file=sys.stderr)
        outcomes = []
        for number, case in enumerate(cases, 1):
            outcome = sweep.run(number, case)
            outcomes.append(outcome)
            mark = "FAIL" if outcome.failed else "ok"
            print(f"{number:3d} {mark:4s} {outcome.rc!s:>4} {outcome.seconds:5.1f}s {case.cmd}: {case.what}", file=sys.stderr)
        sweep.close()
        elapsed = time.perf_counter() - started
        print(table(outcomes, elapsed))
        if args.json:
            args.json.write_text(json.dumps([{
                "number": o.number, "subcommand": o.case.cmd, "case": o.case.what, "command": ["relcli", *o.case.args],
                "expect": list(o.case.expect), "exit": o.rc, "traceback": o.traceback, "one_error_line": o.one_line,
                "silent_wrong": o.silent, "wrong_exit": o.wrong_exit, "clobbered": o.clobbered, "temp_files_left": o.litter,
                "problems": o.problems, "after_kill": o.after_kill, "mode": o.mode, "seconds": round(o.seconds, 2),
                "stderr_tail": o.stderr[-500:]} for o in outcomes], indent=1))
        return 1 if any(o.failed for o in outcomes) else 0
    finally:
        if args.keep is None:
            for folder in work.rglob("*"):  # a mode-000 fixture cannot be removed by every user
                if not folder.is_symlink():
                    folder.chmod(0o700 if folder.is_dir() else 0o600)
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
