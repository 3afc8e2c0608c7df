"""The relcli command line: one thin typer function per subcommand.

Each command parses options, makes one library call, streams records in and out and maps errors to
exit codes (0 ok, 2 bad usage or input, 1 anything else). Decisions (which model kind, which label
inventory) belong to the library. Heavy libraries (torch, transformers) are imported inside the
commands that need them, so `relcli --help`, `convert` and `score` start fast.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Optional

import typer
from typer.core import TyperGroup

from relcli.console import calibration_table, error, report_skipped, say, score_tables
from relcli.errors import UserError, check_numbers
from relcli.records import SkipReport, read_jsonl, write_jsonl
from relcli.streams import open_input, open_output

# Our own progress bars and one-line messages are the interface: keep the libraries' quiet. These
# are read when transformers and the hub client are first imported, which happens inside commands.
for _name, _value in (("TRANSFORMERS_VERBOSITY", "error"), ("HF_HUB_DISABLE_PROGRESS_BARS", "1"),
                      ("HF_DATASETS_DISABLE_PROGRESS_BARS", "1"), ("TOKENIZERS_PARALLELISM", "false")):
    os.environ.setdefault(_name, _value)


class _OneLineErrors(TyperGroup):
    """Usage errors (a bad option value, a missing option) as one `error:` line with exit 2."""

    def main(self, *args, standalone_mode: bool = True, **kwargs):
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except typer.Abort:
            code = 130
        except typer.TyperException as exc:  # typer's own click: bad option values, missing options
            message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
            if message:  # empty after the help shown for a bare `relcli`
                error(message)
            code = 2
        if not standalone_mode:
            return code
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    name="relcli",
    cls=_OneLineErrors,
    help="Relation extraction with fine-tuned language models, retrieval and official scoring.\n\n"
    "Stages read and write JSONL so they pipe together:\n\n"
    "  relcli convert semeval TEST_FILE_FULL.TXT | relcli extract --model ./adapter | relcli score",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
    pretty_exceptions_enable=False,
)

InputOpt = typer.Option(None, "--input", "-i", help="JSONL input file (default: stdin; `-` also means stdin).")
OutputOpt = typer.Option(None, "--output", "-o", help="JSONL output file, written atomically (default: stdout).")
SkipOpt = typer.Option(False, "--skip-invalid", help="Skip bad input lines (counted on stderr) instead of stopping.")
DeviceOpt = typer.Option(None, "--device", help="auto (default: CUDA, else MPS, else CPU), cpu, cuda, cuda:N, mps; env RELCLI_DEVICE.")
DtypeOpt = typer.Option(None, "--dtype", help="auto (default: bf16 on GPUs and on CPUs with bf16 units, else fp32), float32, bfloat16, float16; env RELCLI_DTYPE.")
LabelsOpt = typer.Option(None, "--labels", "-l", help="Label inventory: semeval, tacred, retacred or a FILE (one label per line).")
IndexOpt = typer.Option(None, "--index", help="Index DIR: retrieved examples (RAG4RE), shots, or the kNN vote.")
StyleOpt = typer.Option(None, "--format", help="Triplets: rebel (<triplet> h <subj> t <obj> r) or json (default: json, or as trained).")
ShotsOpt = typer.Option(None, "--shots", min=1, help="Triplets: demonstrations per prompt, retrieved with --index or the first N of --shots-from.")
ShotsFromOpt = typer.Option(None, "--shots-from", help="Triplets: JSONL of training records whose first N are the demonstrations.")
TaskOpt = typer.Option(None, "--task", help="rc (records with a given pair) or triplets (end-to-end records).")
SchemaOpt = typer.Option(None, "--schema", help="Relation schema FILE, JSON or YAML (`relcli schema` drafts one): labels, definitions, argument types.")

# Library parameter -> the flag that sets it, where the two names differ.
FLAGS = {"style": "--format", "skipped": "--skip-invalid", "shots_from": "--shots-from", "eval_file": "--eval", "classifier_lora": "--classifier-lora"}


def flag(param: str) -> str:
    return FLAGS.get(param, "--" + param.replace("_", "-"))


def command(fn):
    """Register a subcommand whose user errors become one line on stderr and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            check_numbers(kwargs)
            return fn(*args, **kwargs)
        except UserError as exc:
            error(f"{flag(exc.param)}: {exc}" if exc.param else str(exc))
            raise typer.Exit(2)
        except KeyboardInterrupt:
            say("interrupted")
            raise typer.Exit(130)
        except BrokenPipeError:
            # The reader went away (`| head`): not an error worth a traceback.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(1)

    return app.command()(wrapper)


@command
def convert(
    fmt: str = typer.Argument(..., metavar="FORMAT", help="semeval, tacred, marked, rebel, conll04, brat, doccano, label-studio or prodigy."),
    paths: list[Path] = typer.Argument(..., help="Dataset files, read in turn (`-` is stdin); brat: directories or .ann files."),
    output: Optional[Path] = OutputOpt,
    patch: Optional[Path] = typer.Option(None, "--patch", help="tacred only: a TACREV patch `[{id, relation}]` or a Re-TACRED map `{id: label}`."),
    split_dev: Optional[float] = typer.Option(None, "--split-dev", min=0.0, max=1.0, help="Tag each record `split: train|dev`, about this fraction dev."),
    seed: int = typer.Option(13, "--seed", help="Seed of the --split-dev hash and of --negative-ratio sampling."),
    only: Optional[str] = typer.Option(None, "--only", help="With --split-dev: write only `train` or `dev`."),
    skip_invalid: bool = SkipOpt,
    annotator: Optional[str] = typer.Option(None, "--annotator", help="label-studio: whose annotation to read (default: each task's first "
                                            "completed one); prodigy: only this annotator's answers."),
    pairs: bool = typer.Option(False, "--pairs", help="Documents with entities: one RC record per ordered entity pair in a sentence, "
                               "instead of one end-to-end record."),
    max_distance: Optional[int] = typer.Option(None, "--max-distance", min=0, help="--pairs: pair entities at most N characters apart instead of within a sentence."),
    negative: Optional[str] = typer.Option(None, "--negative", help="--pairs: the label of pairs without a relation (default no_relation)."),
    negative_ratio: Optional[float] = typer.Option(None, "--negative-ratio", min=0.0, help="--pairs: keep about R negative pairs per gold relation, drawn with --seed."),
):
    """Convert dataset files to relcli records (JSONL), streaming.

    Examples:

      relcli convert semeval TEST_FILE_FULL.TXT -o test.jsonl

      relcli convert semeval TRAIN_FILE.TXT --split-dev 0.1 --seed 13 --only train -o train.jsonl

      relcli convert tacred test.json --patch tacrev/test_patch.json > tacrev-test.jsonl

    The dev carve hashes (seed, id), so two runs with the same seed split the file the same way.

      relcli convert brat corpus/ --split-dev 0.1 --pairs --negative-ratio 3 -o pairs.jsonl

    With --pairs the carve is by document: the pairs of one document stay on one side.
    """
    from collections import Counter

    from relcli.formats import convert_sources, load_patch

    report, skipped = Counter(), SkipReport() if skip_invalid else None
    sources = [sys.stdin.buffer if str(path) == "-" else path for path in paths]
    loaded = load_patch(patch) if patch is not None else None
    records = convert_sources(fmt, sources, report, patch=loaded, skipped=skipped, annotator=annotator, split_dev=split_dev, seed=seed,
                              only=only, pairs=pairs, negative=negative, max_distance=max_distance, negative_ratio=negative_ratio)
    with open_output(output, inputs=paths) as out:
        count = write_jsonl(records, out)
    report_skipped(skipped)
    for what, n in report.items():
        say(f"{what}: {n}")
    if loaded is not None and loaded.unused:
        say(f"patch entries matching no record: {loaded.unused}")
    say(f"wrote {count} records")


@command
def prompts(
    input: Optional[Path] = InputOpt,
    output: Optional[Path] = OutputOpt,
    template: str = typer.Option("simple", "--template", "-t", help="simple (the paper's), compact, rag, compact-rag, definitions (needs --schema), or a template FILE with {fields}."),
    labels: Optional[str] = LabelsOpt,
    schema: Optional[Path] = SchemaOpt,
    labels_from_data: bool = typer.Option(False, "--labels-from-data", help="Use the sorted gold labels of the input (never do this on test data)."),
    index: Optional[Path] = IndexOpt,
    k: Optional[int] = typer.Option(None, "--k", min=1, help="Retrieved examples per prompt (default 3)."),
    task: str = typer.Option("rc", "--task", help="rc (records with a head/tail pair) or triplets (end-to-end records)."),
    style: Optional[str] = StyleOpt,
    shots: Optional[int] = ShotsOpt,
    shots_from: Optional[Path] = ShotsFromOpt,
    skip_invalid: bool = SkipOpt,
):
    """Turn records into prompt/completion pairs for fine-tuning.

    Examples:

        relcli convert semeval TRAIN_FILE.TXT | relcli prompts --template compact --labels semeval > train.prompts.jsonl

        relcli convert conll04 conll04_train.json | relcli prompts --task triplets --format json -t compact --labels-from-data > train.prompts.jsonl

        relcli prompts -t definitions --schema schema.json -i train.pairs.jsonl > train.prompts.jsonl

    With --task triplets, --template is simple (instruction and relation list) or compact (the text only, for fine-tuning).
    """
    from relcli.prompts import prompt_stream

    skipped = SkipReport() if skip_invalid else None
    with open_input(input) as stream:
        pairs = prompt_stream(read_jsonl(stream, skipped=skipped), task=task, template=template, labels=labels, schema=schema,
                              labels_from_data=labels_from_data, index=index, k=k, style=style, shots=shots or 0,
                              shots_from=shots_from)
        with open_output(output, inputs=[input]) as out:
            n = write_jsonl(pairs, out)
    say(f"wrote {n} prompts")
    report_skipped(skipped)


@command
def finetune(
    model: str = typer.Option(..., "--model", "-m", help="Base model: smollm2-135m, minilm or mpnet (classifier), a hub id or a local folder."),
    output: Path = typer.Option(..., "--output", "-o", help="Adapter or classifier folder to write (replaced whole at the end)."),
    input: Optional[Path] = InputOpt,
    method: str = typer.Option("lora", "--method", help="lora: a generator on prompt JSONL; classifier: an encoder + head on records."),
    preset: Optional[str] = typer.Option(None, "--preset", help="paper-decoder or paper-t5 (the paper's Table 2); flags override."),
    epochs: Optional[float] = typer.Option(None, "--epochs", min=1e-12),
    lr: Optional[float] = typer.Option(None, "--lr", min=1e-12),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", min=1),
    grad_accum: Optional[int] = typer.Option(None, "--grad-accum", min=1),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", min=1),
    weight_decay: Optional[float] = typer.Option(None, "--weight-decay", min=0.0),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="constant, constant_with_warmup, linear, cosine, cosine_with_restarts, polynomial."),
    warmup_ratio: Optional[float] = typer.Option(None, "--warmup-ratio", min=0.0, max=1.0),
    label_smoothing: Optional[float] = typer.Option(None, "--label-smoothing", min=0.0, max=1.0),
    lora_r: Optional[int] = typer.Option(None, "--lora-r", min=1),
    lora_alpha: Optional[int] = typer.Option(None, "--lora-alpha", min=1),
    lora_dropout: Optional[float] = typer.Option(None, "--lora-dropout", min=0.0, max=0.99),
    lora_targets: Optional[str] = typer.Option(None, "--lora-targets", help="all-linear (default) or comma-separated module names."),
    quantize: Optional[str] = typer.Option(None, "--quantize", help="none, 4bit (QLoRA: NF4 + double quantization) or 8bit."),
    device: Optional[str] = DeviceOpt,
    dtype: Optional[str] = DtypeOpt,
    max_length: Optional[int] = typer.Option(None, "--max-length", min=16),
    seed: Optional[int] = typer.Option(None, "--seed", min=0, max=2**32 - 1),
    save_steps: Optional[int] = typer.Option(None, "--save-steps", min=1, help="Checkpoint every N steps."),
    chat: Optional[bool] = typer.Option(None, "--chat/--no-chat", help="Wrap prompts in the model's chat template (default: no)."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Train on the first N inputs only."),
    eval_file: Optional[Path] = typer.Option(None, "--eval", help="Prompt JSONL for eval loss (classifier: records for accuracy)."),
    template: Optional[str] = typer.Option(None, "--template", help="Override the template recorded in the prompts."),
    labels: Optional[str] = typer.Option(None, "--labels", "-l", help="Override the label inventory recorded in the prompts."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the newest checkpoint in DIR/checkpoints."),
    trust_remote_code: bool = typer.Option(False, "--trust-remote-code"),
    pooling: Optional[str] = typer.Option(None, "--pooling", help="Classifier: cls, entity-start or cls+entity (default)."),
    typed_markers: bool = typer.Option(False, "--typed-markers", help="Classifier: entity types inside the markers (<e1:PERSON>)."),
    head_lr: Optional[float] = typer.Option(None, "--head-lr", min=1e-12, help="Classifier: learning rate of the head (default: --lr)."),
    classifier_lora: bool = typer.Option(False, "--classifier-lora", help="Classifier: LoRA adapters instead of full fine-tuning."),
    teacher: Optional[str] = typer.Option(None, "--teacher", help="Classifier: distil this model (adapter or classifier DIR): "
                                          "its label probabilities on the training records are soft targets."),
    distill_weight: Optional[float] = typer.Option(None, "--distill-weight", min=0.0, max=1.0,
                                                   help="Classifier with --teacher: the soft targets' share of the loss (default 0.5; the rest on the gold labels)."),
    skip_invalid: bool = SkipOpt,
):
    """LoRA / QLoRA fine-tuning on prompt/completion JSONL (loss on the completion only), or an
    encoder classifier on records (--method classifier).

    Examples:

        relcli prompts -t compact -l semeval -i train.jsonl | relcli finetune -m smollm2-135m -o adapter/ --epochs 1

        relcli finetune --method classifier -m minilm -l semeval -i train.jsonl -o classifier/ --epochs 8

        relcli finetune --method classifier -m minilm --teacher adapter/ -i train.jsonl -o student/ --epochs 3
    """
    options = {name: value for name, value in locals().items()  # the options set (typer leaves the others None / False)
               if name not in ("model", "output", "input", "method", "skip_invalid") and value is not None and value is not False}
    from relcli.console import TrainingBar
    from relcli.prompts import validate_prompt
    from relcli.streams import check_writable, read_all
    from relcli.training import train

    check_writable(output, "output", directory=True)
    skipped = SkipReport() if skip_invalid else None
    validate = {"validate": validate_prompt} if method == "lora" else {}
    eval_records = read_all(eval_file, "eval_file", **validate)
    with open_input(input) as stream, TrainingBar() as bar:
        message = train(method, model, output, read_jsonl(stream, skipped=skipped, **validate), options,
                        eval_records=eval_records, on_log=bar.update, track=bar.track)
    report_skipped(skipped)
    say(message)


PREDICTOR_OPTIONS = ("task", "template", "labels", "schema", "negative_margin", "decode", "index", "k", "batch_size", "max_new_tokens",
                     "chat", "device", "dtype", "quantize", "explain", "style", "shots", "shots_from", "trust_remote_code", "copy",
                     "window", "stride")


@command
def extract(
    model: Optional[list[str]] = typer.Option(None, "--model", "-m", help="Adapter or classifier DIR from finetune, smollm2-135m, a hub id or a local folder; "
                                              "given twice or more, an ensemble averaging the models' label probabilities."),
    input: Optional[Path] = InputOpt,
    output: Optional[Path] = OutputOpt,
    template: Optional[str] = typer.Option(None, "--template", "-t", help="For a base model: simple (default), rag, compact or a FILE."),
    labels: Optional[str] = LabelsOpt,
    schema: Optional[Path] = SchemaOpt,
    negative_margin: Optional[float] = typer.Option(None, "--negative-margin", help="Raise the negative label's score by M before the argmax "
                                                    "(M from `score --calibrate`): classifier, kNN vote, and generators (scoring every label)."),
    decode: Optional[str] = typer.Option(None, "--decode", help="constrained (default: only valid labels), generate (free text mapped to a label), knn (label vote of retrieved neighbours)."),
    index: Optional[Path] = IndexOpt,
    k: Optional[int] = typer.Option(None, "--k", min=1, help="Retrieved examples per record (default 3)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", min=1, help="Records per forward (default 16)."),
    max_new_tokens: Optional[int] = typer.Option(None, "--max-new-tokens", min=1, help="For --decode generate (default 30) and --task triplets (default 256)."),
    chat: Optional[bool] = typer.Option(None, "--chat/--no-chat", help="Chat-format the prompt (default: as trained; for a base model, when it has a chat template)."),
    device: Optional[str] = DeviceOpt,
    dtype: Optional[str] = DtypeOpt,
    quantize: Optional[str] = typer.Option(None, "--quantize", help="none, 4bit, 8bit."),
    explain: bool = typer.Option(False, "--explain", help="Add the raw output and per-label scores."),
    resume: bool = typer.Option(False, "--resume", help="Append to -o after the records an interrupted run wrote there."),
    shard: Optional[str] = typer.Option(None, "--shard", help="K/N: process the K-th of N contiguous parts of -i FILE; auto: K/N of this Slurm array task."),
    trust_remote_code: bool = typer.Option(False, "--trust-remote-code"),
    task: Optional[str] = TaskOpt,
    style: Optional[str] = StyleOpt,
    shots: Optional[int] = ShotsOpt,
    shots_from: Optional[Path] = ShotsFromOpt,
    copy: Optional[bool] = typer.Option(None, "--copy/--no-copy", help="Triplets: heads and tails generated only as spans copied from the text (default: on)."),
    window: Optional[int] = typer.Option(None, "--window", min=1, help="Triplets: read each text in windows of N characters (cut at whitespace), e.g. texts longer than the model's context."),
    stride: Optional[int] = typer.Option(None, "--stride", min=1, help="Triplets: characters from one window's start to the next (default: 3/4 of --window); triplets found twice are merged."),
    skip_invalid: bool = SkipOpt,
):
    """Label every record with a model (adds "predicted", or "predicted_triplets"), in input order.

    Examples:

        relcli extract --model ./adapter < test.jsonl > preds.jsonl

        relcli extract -m smollm2-135m -t simple -l semeval -i test.jsonl -o zs.jsonl --resume

        relcli extract -m ./adapter --index train.index --k 3 -i test.jsonl --shard 2/8 -o part2.jsonl

        relcli extract --decode knn --index train.index -i test.jsonl | relcli score

        relcli extract -m ./triplet-adapter --window 2000 --stride 1500 -i long-documents.jsonl -o preds.jsonl

        relcli extract -m ./triplet-adapter -i conll04-dev.jsonl | relcli score --scheme triplets

        relcli extract -m ./classifier --schema schema.json --negative-margin 0.3 -i dev.pairs.jsonl | relcli score

        relcli extract -m ./classifier -m ./adapter -i test.jsonl -o ensemble.jsonl
    """
    from relcli.ensemble import open_ensemble
    from relcli.predictors import open_predictor
    from relcli.streams import Run, progress

    if resume and output is None:
        raise UserError("--resume needs -o FILE")
    if shard is not None and (input is None or str(input) == "-"):
        raise UserError("--shard needs -i FILE (the input must be countable)")
    run = Run(input, output, resume=resume, shard=shard)
    options = {name: value for name, value in locals().items() if name in PREDICTOR_OPTIONS}
    predictor = open_ensemble(model, **options) if model and len(model) > 1 else open_predictor(model[0] if model else None, **options)
    skipped = SkipReport() if skip_invalid else None
    with open_input(input) as stream, run.writer() as write:
        for record in progress(predictor.predict(run.select(read_jsonl(stream, skipped=skipped))), "extracting", total=run.total):
            write(record)
    report_skipped(skipped)
    for line in predictor.summary():
        say(line)


@command
def score(
    input: Optional[Path] = InputOpt,
    scheme: str = typer.Option("auto", "--scheme", help="auto | tacred | semeval | triplets. auto: semeval when every gold label is a "
                               "SemEval label, triplets for end-to-end records, else tacred."),
    negative: Optional[str] = typer.Option(None, "--negative", help="The negative label (default: the inventory's `no_relation`/`Other`, else `no_relation`)."),
    labels: Optional[str] = typer.Option(None, "--labels", "-l", help="Label inventory deciding which predictions are valid: semeval, tacred, tacrev, "
                                         "retacred or a file with one label per line (default: SemEval's for semeval, else the gold labels)."),
    schema: Optional[Path] = SchemaOpt,
    calibrate: bool = typer.Option(False, "--calibrate", help="Instead of scores: the margin for the negative label that maximises micro-F1 on "
                                   "predictions made with --explain (for `extract --negative-margin`)."),
    format: str = typer.Option("table", "--format", help="table: human tables on stderr; json: one JSON object on stdout."),
    confusion: Optional[Path] = typer.Option(None, "--confusion", help="Also draw the confusion matrix to this image file (.png, .pdf, .svg; needs `pip install 'relcli[plot]'`)."),
    skip_invalid: bool = SkipOpt,
):
    """Score predictions against gold: TACRED micro P/R/F1, official SemEval-2010 macro-F1, triplet P/R/F1.

    Reads records with `relation` and `predicted` (relation classification) or `triplets` and
    `predicted_triplets` (end-to-end), as `relcli extract` writes them.

    Examples:

        relcli score -i preds.jsonl

        relcli extract --model ./adapter < test.jsonl | relcli score --format json | jq .official.f1

        relcli score -i preds.jsonl --scheme tacred --labels retacred --confusion confusion.png

        relcli extract -m ./classifier --explain -i dev.pairs.jsonl | relcli score --calibrate
    """
    from relcli.scoring import SCHEMES, evaluate, score_validator

    if scheme not in SCHEMES:
        raise UserError(f"--scheme must be one of {', '.join(SCHEMES)}, not {scheme!r}")
    if format not in ("table", "json"):
        raise UserError(f"--format must be table or json, not {format!r}")
    skipped = SkipReport() if skip_invalid else None
    with open_input(input) as handle:  # the confusion image is checked before reading and drawn after scoring
        result = evaluate(read_jsonl(handle, validate=score_validator(), skipped=skipped), scheme=scheme, negative=negative,
                          labels=labels, schema=schema, calibrate=calibrate, confusion=confusion)
    report_skipped(skipped)
    if format == "json":
        sys.stdout.buffer.write(json.dumps(result).encode() + b"\n")
    else:
        (calibration_table if calibrate else score_tables)(result)


@command
def schema(
    input: Optional[Path] = InputOpt,
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Schema file to write, atomically (default: stdout)."),
    negative: Optional[str] = typer.Option(None, "--negative", help="The negative label (default: `no_relation`/`Other` where seen, else `no_relation`)."),
    skip_invalid: bool = SkipOpt,
):
    """Draft a relation schema (JSON) from labelled records: the entity types seen per relation.

    With counts, to edit (descriptions, stray types, symmetric) before passing it with --schema:

        relcli convert conll04 conll04_train.json --pairs | relcli schema > schema.json
    """
    from relcli.schema import dumps, infer

    skipped = SkipReport() if skip_invalid else None
    with open_input(input) as stream:
        drafted = infer(read_jsonl(stream, skipped=skipped), negative=negative)
    with open_output(output) as out:
        out.write(dumps(drafted).encode())
    report_skipped(skipped)


@command
def index(
    output: Path = typer.Option(..., "--output", "-o", help="Index directory to create (replaced atomically)."),
    input: Optional[Path] = InputOpt,
    model: str = typer.Option("minilm", "--model", "-m", help="Embedder: `minilm` or `mpnet` (packaged), a sentence-transformers id/path, "
                              "or a classifier DIR from `finetune --method classifier` (neighbours share the relation)."),
    embed: Optional[str] = typer.Option(None, "--embed", help="What is embedded: `sentence` (the text), `marked` (the text with "
                                        "[E1]..[/E1] [E2]..[/E2] around the pair) or `classifier` (the classifier's pair "
                                        "representation); default: classifier for a classifier DIR, else sentence."),
    m: Optional[int] = typer.Option(None, "--m", min=2, max=1024, help="hnswlib M: links per node (recall vs memory; default 32)."),
    ef_construction: Optional[int] = typer.Option(None, "--ef-construction", min=1, help="hnswlib ef_construction: build-time search breadth (default 200)."),
    batch_size: int = typer.Option(256, "--batch-size", min=1, help="Records embedded per batch (bounds memory)."),
    append: bool = typer.Option(False, "--append", help="Add the records to an existing index (same --model, --embed and classifier weights)."),
    device: Optional[str] = DeviceOpt,
    dtype: Optional[str] = DtypeOpt,
    skip_invalid: bool = SkipOpt,
):
    """Embed labelled records into a nearest-neighbour index for retrieval (RAG4RE, kNN).

    Examples:

        relcli convert semeval TRAIN_FILE.TXT | relcli index -o train-index --embed marked

        relcli index -m classifier/ -i train.jsonl -o train-rel-index

    An index remembers its embedder (a classifier's folder and head hash too) and embeds queries
    the same way, for `extract --decode knn`, RAG4RE (`extract --index`) and `prompts --index`.
    """
    import time

    from relcli.retrieval import build_index
    from relcli.streams import progress

    skipped = SkipReport() if skip_invalid else None
    started = time.perf_counter()
    with open_input(input) as lines:
        records = progress(read_jsonl(lines, skipped=skipped), "indexing")
        meta = build_index(records, output, model=model, embed=embed, m=m, ef_construction=ef_construction,
                           batch_size=batch_size, append=append, device=device, dtype=dtype)
    report_skipped(skipped)
    say(f"indexed {meta['added']} records ({meta['count']} in all, dim {meta['dimension']}) "
        f"into {output} in {time.perf_counter() - started:.1f} s")


def main() -> None:
    logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)  # it cannot fetch an optional CPU kernel from the hub
    warnings.filterwarnings("ignore", category=FutureWarning)  # deprecations inside transformers/peft
    app()
