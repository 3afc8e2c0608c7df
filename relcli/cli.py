"""The relcli command line: one thin typer function per subcommand.

Each command turns options into a call of a library function, streams records in and out, and
maps errors to exit codes (0 ok, 2 bad usage or input, 1 anything else). Heavy libraries (torch,
transformers) are imported inside the commands that need them, so `relcli --help`, `convert` and
`score` start fast.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from relcli.errors import UserError
from relcli.records import SkipReport
from relcli.streams import open_input, open_output

app = typer.Typer(
    name="relcli",
    help="Relation extraction with fine-tuned language models, retrieval and official scoring.\n\n"
    "Stages read and write JSONL so they pipe together:\n\n"
    "  relcli convert semeval TEST_FILE_FULL.TXT | relcli extract --model ./adapter | relcli score",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
)
stderr = Console(stderr=True, soft_wrap=True)  # one message, one line, whatever the width


InputOpt = typer.Option(None, "--input", "-i", help="JSONL input file (default: stdin; `-` also means stdin).")
OutputOpt = typer.Option(None, "--output", "-o", help="JSONL output file, written atomically (default: stdout).")
SkipOpt = typer.Option(False, "--skip-invalid", help="Skip bad input lines (counted on stderr) instead of stopping.")


def command(fn):
    """Register a subcommand whose user errors become one line on stderr and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UserError as exc:
            stderr.print(f"[red]error:[/] {exc}", highlight=False, markup=True)
            raise typer.Exit(2)
        except KeyboardInterrupt:
            stderr.print("interrupted")
            raise typer.Exit(130)
        except BrokenPipeError:
            # The reader went away (`| head`): not an error worth a traceback.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(1)

    return app.command()(wrapper)


def report_skipped(skipped: SkipReport | None) -> None:
    if skipped and skipped.count:
        stderr.print(f"skipped {skipped.count} invalid line(s)", highlight=False)
        for message in skipped.examples:
            stderr.print(f"  {message}", highlight=False, markup=False)



@command
def convert(
    fmt: str = typer.Argument(..., metavar="FORMAT", help="semeval, tacred, marked, rebel or conll04."),
    paths: list[Path] = typer.Argument(..., help="Dataset files, read in turn (`-` is stdin)."),
    output: Optional[Path] = OutputOpt,
    patch: Optional[Path] = typer.Option(
        None, "--patch", help="tacred only: a TACREV patch `[{id, relation}]` or a Re-TACRED map `{id: label}`."
    ),
    split_dev: Optional[float] = typer.Option(
        None, "--split-dev", min=0.0, max=1.0, help="Tag each record `split: train|dev`, about this fraction dev."
    ),
    seed: int = typer.Option(13, "--seed", help="Seed of the --split-dev hash (same seed, same carve)."),
    only: Optional[str] = typer.Option(None, "--only", help="With --split-dev: write only `train` or `dev`."),
    skip_invalid: bool = SkipOpt,
):
    """Convert dataset files to relcli records (JSONL), streaming.

    Examples:

      relcli convert semeval TEST_FILE_FULL.TXT -o test.jsonl

      relcli convert semeval TRAIN_FILE.TXT --split-dev 0.1 --seed 13 --only train -o train.jsonl

      relcli convert semeval TRAIN_FILE.TXT --split-dev 0.1 --seed 13 --only dev -o dev.jsonl

      relcli convert tacred test.json --patch tacrev/test_patch.json > tacrev-test.jsonl

    The dev carve hashes (seed, id), so the two runs above split the file the same way.
    """
    from collections import Counter

    from relcli.formats import convert as convert_records, load_patch
    from relcli.records import write_jsonl
    from relcli.splits import SPLITS, carve_dev
    from relcli.streams import open_output

    if only is not None and (split_dev is None or only not in SPLITS):
        raise UserError("--only takes train or dev, and needs --split-dev")
    loaded = load_patch(patch) if patch is not None else None
    report, skipped = Counter(), SkipReport() if skip_invalid else None
    sources = [sys.stdin.buffer if str(path) == "-" else path for path in paths]
    records = convert_records(fmt, sources, report, patch=loaded, skipped=skipped)
    if split_dev is not None:
        records = carve_dev(records, split_dev, seed, only)
    with open_output(output) as out:
        count = write_jsonl(records, out)
    report_skipped(skipped)
    for what, n in report.items():
        stderr.print(f"{what}: {n}", highlight=False)
    if loaded is not None and loaded.unused:
        stderr.print(f"patch entries matching no record: {loaded.unused}", highlight=False)
    stderr.print(f"wrote {count} records", highlight=False)


# --- triplets (end-to-end) prompts and extraction --------------------------------------------

TripletFormatOpt = typer.Option(None, "--format", help="--task triplets: rebel (<triplet> h <subj> t <obj> r) or json. Default: json, or as the adapter was trained.")
ShotsOpt = typer.Option(0, "--shots", min=0, help="--task triplets: demonstrations per prompt, retrieved with --index or the first N of --shots-from.")
ShotsFromOpt = typer.Option(None, "--shots-from", help="--task triplets: JSONL of training records whose first N are the demonstrations.")
TRIPLET_TEMPLATES = "with --task triplets, --template is simple (instruction and relation list) or compact (the text only)"


def _triplet_shots(shots: int, shots_from: Optional[Path], index: Optional[Path]):
    """The demonstrations function --shots asks for (None for zero-shot)."""
    if not shots:
        if index or shots_from:
            raise UserError("--index/--shots-from give demonstrations: say how many with --shots N")
        return None
    if index:
        return _examples_for(index, shots)
    if not shots_from:
        raise UserError("--shots N needs --index DIR (retrieved) or --shots-from FILE (the first N training records)")
    import itertools

    from relcli.records import read_jsonl
    from relcli.triplets import first_shots

    with open_input(shots_from) as stream:
        # One spare, in case a record is its own demonstration.
        return first_shots(list(itertools.islice(read_jsonl(stream), shots + 1)), shots)


def _triplet_style(style: Optional[str]) -> str:
    from relcli.triplets import STYLES

    if style not in STYLES:
        raise UserError(f"--format must be one of {', '.join(STYLES)}, not {style!r}")
    return style


def _extract_task(task: Optional[str], model: Optional[str]) -> str:
    """rc or triplets: as asked, else as the adapter's relcli.json says it was trained."""
    from relcli.models import read_meta, resolve_path
    from relcli.triplets import parse_template

    if task is None:
        meta = (read_meta(resolve_path(model)) or {}) if model else {}
        return "triplets" if parse_template(meta.get("template")) else "rc"
    if task not in ("rc", "triplets"):
        raise UserError(f"--task must be rc or triplets, not {task!r}")
    return task


def _triplet_predictor(model, template, labels, style, shots, shots_from, index, batch_size, max_new_tokens, chat,
                       dtype, quantize, explain, trust_remote_code):
    """The record-stream function of --task triplets, and its extractor (which counts malformed output)."""
    from relcli.extract import has_chat_template
    from relcli.labels import load_labels
    from relcli.models import load_model, read_meta, resolve_path
    from relcli.triplets import TripletExtractor, parse_template

    if model is None:
        raise UserError("--model is required")
    if template not in (None, "simple", "compact"):
        raise UserError(TRIPLET_TEMPLATES)
    shots_for = _triplet_shots(shots, shots_from, index)
    meta = read_meta(resolve_path(model)) or {}
    relations = load_labels(labels) if labels else meta.get("labels")
    if not relations:
        raise UserError("a base model needs the relation inventory: --labels FILE (one relation per line)")
    trained_style, compact = parse_template(meta.get("template")) or (None, False)
    if template is not None:
        compact = template == "compact"
    loaded = load_model(model, dtype=dtype, quantize=quantize, trust_remote_code=trust_remote_code)
    if chat is None:
        chat = meta["chat"] if "chat" in meta else has_chat_template(loaded.tokenizer) and not loaded.is_seq2seq
    extractor = TripletExtractor(loaded, _triplet_style(style or trained_style or "json"), relations,
                                 compact=compact, chat=chat, batch_size=batch_size,
                                 max_new_tokens=max_new_tokens or 256, explain=explain)
    return (lambda records: extractor.predict(records, shots_for)), extractor


def _triplet_prompts(input, output, template, labels, labels_from_data, style, shots, shots_from, index, skip_invalid):
    from relcli.labels import load_labels
    from relcli.records import read_jsonl, write_jsonl
    from relcli.triplets import relations_of, triplet_prompt_records

    if template not in ("simple", "compact"):
        raise UserError(TRIPLET_TEMPLATES)
    style = _triplet_style(style or "json")
    shots_for = _triplet_shots(shots, shots_from, index)
    skipped = SkipReport() if skip_invalid else None
    with open_input(input) as stream:
        records = read_jsonl(stream, skipped=skipped)
        if labels:
            relations = load_labels(labels)
        elif labels_from_data:
            records = list(records)
            relations = relations_of(records)
        else:
            raise UserError("a relation inventory is needed: --labels FILE (or --labels-from-data on training data)")
        prompts = triplet_prompt_records(records, style, relations, compact=template == "compact", shots_for=shots_for)
        with open_output(output) as out:
            n = write_jsonl(prompts, out)
    stderr.print(f"wrote {n} prompts", highlight=False)
    report_skipped(skipped)


def _labels_option(labels: Optional[str], records_labels: Optional[list[str]] = None) -> tuple[list[str], str | list[str]]:
    """The label inventory and how to record it: a builtin name stays a name, a file becomes a list."""
    from relcli.labels import BUILTIN, load_labels

    if labels:
        inventory = load_labels(labels)
        return inventory, labels if labels in BUILTIN else inventory
    if records_labels is not None:
        return records_labels, records_labels
    raise UserError("a label inventory is needed: --labels semeval|tacred|retacred|FILE (or --labels-from-data)")


@command
def prompts(
    input: Optional[Path] = InputOpt,
    output: Optional[Path] = OutputOpt,
    template: str = typer.Option("simple", "--template", "-t", help="simple (the paper's), compact, rag, compact-rag, or a template FILE with {fields}."),
    labels: Optional[str] = typer.Option(None, "--labels", "-l", help="Label inventory: semeval, tacred, retacred or a FILE (one label per line)."),
    labels_from_data: bool = typer.Option(False, "--labels-from-data", help="Use the sorted gold labels of the input (never do this on test data)."),
    index: Optional[Path] = typer.Option(None, "--index", help="Index DIR for retrieved examples (templates with {examples})."),
    k: int = typer.Option(3, "--k", help="Retrieved examples per prompt."),
    task: str = typer.Option("rc", "--task", help="rc (records with a head/tail pair) or triplets (end-to-end records)."),
    style: Optional[str] = TripletFormatOpt,
    shots: int = ShotsOpt,
    shots_from: Optional[Path] = ShotsFromOpt,
    skip_invalid: bool = SkipOpt,
):
    """Turn records into prompt/completion pairs for fine-tuning.

    Examples:

        relcli convert semeval TRAIN_FILE.TXT | relcli prompts --template compact --labels semeval > train.prompts.jsonl

        relcli convert conll04 conll04_train.json | relcli prompts --task triplets --format json -t compact --labels-from-data > train.prompts.jsonl

    With --task triplets, --template is simple (instruction and relation list) or compact (the text only, for fine-tuning).
    """
    from relcli.prompts import load_template, needs_examples, prompt_records
    from relcli.records import read_jsonl, write_jsonl

    if task == "triplets":
        return _triplet_prompts(input, output, template, labels, labels_from_data, style, shots, shots_from, index, skip_invalid)
    if task != "rc":
        raise UserError(f"--task must be rc or triplets, not {task!r}")
    text = load_template(template)
    skipped = SkipReport() if skip_invalid else None
    with open_input(input) as stream:
        records = read_jsonl(stream, skipped=skipped)
        if labels_from_data and not labels:
            records = list(records)
            inventory, spec = _labels_option(None, sorted({r["relation"] for r in records if r.get("relation")}))
        else:
            inventory, spec = _labels_option(labels)
        examples_for = None
        if needs_examples(text):
            if index is None:
                raise UserError(f"template {template!r} needs retrieved examples: pass --index DIR")
            examples_for = _examples_for(index, k)
        with open_output(output) as out:
            n = write_jsonl(prompt_records(records, text, inventory, template, spec, examples_for), out)
    stderr.print(f"wrote {n} prompts", highlight=False)
    report_skipped(skipped)


def _examples_for(index: Path, k: int):
    from relcli.retrieval import Index

    loaded = Index.load(index)
    return lambda batch: [[neighbour for neighbour, _ in hits] for hits in loaded.search(batch, k)]


@command
def finetune(
    model: str = typer.Option(..., "--model", "-m", help="Base model: smollm2-135m, a hub id or a local folder."),
    output: Path = typer.Option(..., "--output", "-o", help="Adapter directory to write."),
    input: Optional[Path] = InputOpt,
    preset: Optional[str] = typer.Option(None, "--preset", help="paper-decoder or paper-t5 (the paper's Table 2); flags override."),
    epochs: Optional[float] = typer.Option(None, "--epochs"),
    lr: Optional[float] = typer.Option(None, "--lr"),
    batch_size: Optional[int] = typer.Option(None, "--batch-size"),
    grad_accum: Optional[int] = typer.Option(None, "--grad-accum"),
    max_steps: Optional[int] = typer.Option(None, "--max-steps"),
    weight_decay: Optional[float] = typer.Option(None, "--weight-decay"),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="constant, constant_with_warmup, linear, cosine, cosine_with_restarts, polynomial."),
    warmup_ratio: Optional[float] = typer.Option(None, "--warmup-ratio"),
    label_smoothing: Optional[float] = typer.Option(None, "--label-smoothing"),
    lora_r: Optional[int] = typer.Option(None, "--lora-r"),
    lora_alpha: Optional[int] = typer.Option(None, "--lora-alpha"),
    lora_dropout: Optional[float] = typer.Option(None, "--lora-dropout"),
    lora_targets: Optional[str] = typer.Option(None, "--lora-targets", help="all-linear (default) or comma-separated module names."),
    quantize: Optional[str] = typer.Option(None, "--quantize", help="none, 4bit (QLoRA: NF4 + double quantization) or 8bit."),
    dtype: Optional[str] = typer.Option(None, "--dtype", help="auto (bf16 autocast where supported), float32, bfloat16."),
    max_length: Optional[int] = typer.Option(None, "--max-length"),
    seed: Optional[int] = typer.Option(None, "--seed"),
    save_steps: Optional[int] = typer.Option(None, "--save-steps", help="Checkpoint every N steps."),
    chat: Optional[bool] = typer.Option(None, "--chat/--no-chat", help="Wrap prompts in the model's chat template (default: no)."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Train on the first N prompts only."),
    eval_file: Optional[Path] = typer.Option(None, "--eval", help="Prompt JSONL for eval loss."),
    template: Optional[str] = typer.Option(None, "--template", help="Override the template recorded in the prompts."),
    labels: Optional[str] = typer.Option(None, "--labels", "-l", help="Override the label inventory recorded in the prompts."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the newest checkpoint in DIR/checkpoints."),
    trust_remote_code: bool = typer.Option(False, "--trust-remote-code"),
    method: str = typer.Option("lora", "--method", help="lora: a generator on prompt JSONL; classifier: an encoder + head on records."),
    pooling: str = typer.Option("cls+entity", "--pooling", help="Classifier: cls, entity-start or cls+entity."),
    typed_markers: bool = typer.Option(False, "--typed-markers", help="Classifier: entity types inside the markers (<e1:PERSON>)."),
    head_lr: Optional[float] = typer.Option(None, "--head-lr", help="Classifier: learning rate of the head (default: --lr)."),
    classifier_lora: bool = typer.Option(False, "--classifier-lora", help="Classifier: LoRA adapters instead of full fine-tuning."),
    skip_invalid: bool = SkipOpt,
):
    """LoRA / QLoRA fine-tuning on prompt/completion JSONL (loss on the completion only).

    Example:

        relcli prompts -t compact -l semeval -i train.jsonl | relcli finetune -m smollm2-135m -o adapter/ --epochs 1
    """
    if method == "classifier":
        return _finetune_classifier(
            model, output, input, labels, eval_file, limit, skip_invalid,
            dict(pooling=pooling, typed_markers=typed_markers, epochs=None if epochs is None else int(epochs), lr=lr, head_lr=head_lr,
                 batch_size=batch_size, max_length=max_length, seed=seed, lora=classifier_lora,
                 lora_r=lora_r, lora_alpha=lora_alpha, bf16=None if dtype in (None, "auto") else dtype == "bfloat16"),
        )
    if method != "lora":
        raise UserError(f"unknown --method {method!r} (lora, classifier)")
    from relcli.finetune import TrainConfig, finetune as run_finetune, validate_prompt
    from relcli.labels import load_labels
    from relcli.records import read_jsonl

    config = TrainConfig.from_preset(
        preset, epochs=epochs, lr=lr, batch_size=batch_size, grad_accum=grad_accum, max_steps=max_steps,
        weight_decay=weight_decay, scheduler=scheduler, warmup_ratio=warmup_ratio, label_smoothing=label_smoothing,
        lora_r=lora_r, lora_alpha=lora_alpha, lora_dropout=lora_dropout, lora_targets=lora_targets,
        quantize=quantize, dtype=dtype, max_length=max_length, seed=seed, save_steps=save_steps, chat=chat,
        trust_remote_code=trust_remote_code or None,
    )
    skipped = SkipReport() if skip_invalid else None
    with open_input(input) as stream:
        data = list(read_jsonl(stream, validate=validate_prompt, skipped=skipped))
    report_skipped(skipped)
    if not data:
        raise UserError("no training prompts in the input")
    eval_data = []
    if eval_file:
        with open_input(eval_file) as stream:
            eval_data = list(read_jsonl(stream, validate=validate_prompt))
    template = template or data[0].get("template") or "simple"
    recorded = data[0].get("labels")
    if labels:
        inventory = load_labels(labels)
    elif isinstance(recorded, list):
        inventory = recorded
    elif isinstance(recorded, str):
        inventory = load_labels(recorded)
    else:
        inventory = sorted({p["completion"] for p in data})
    from relcli.triplets import check_completions, parse_template

    triplets = parse_template(template)
    unknown = set() if triplets else {p["completion"] for p in data} - set(inventory)
    if unknown:
        raise UserError(f"completions not in the label inventory: {sorted(unknown)[:5]}")
    if triplets:
        check_completions(data, triplets[0], inventory)

    bar = _TrainingBar()
    with bar:
        summary = run_finetune(data, model, output, config, template=template, labels=inventory,
                               eval_prompts=eval_data, limit=limit, resume=resume, on_log=bar.update)
    stderr.print(f"adapter written to {output} ({summary['steps']} steps, {summary['seconds']} s, "
                 f"train loss {summary['train_loss']:.4f})", highlight=False)


def _finetune_classifier(model, output, input, labels, eval_file, limit, skip_invalid, options):
    """`finetune --method classifier`: train on records directly (no prompts)."""
    from relcli.classifier import train_classifier
    from relcli.labels import load_labels
    from relcli.records import read_jsonl

    skipped = SkipReport() if skip_invalid else None
    with open_input(input) as stream:
        records = [r for r in read_jsonl(stream, skipped=skipped) if r.get("relation") is not None][: limit or None]
    report_skipped(skipped)
    if not records:
        raise UserError("no labelled records in the input")
    eval_records = None
    if eval_file:
        with open_input(eval_file) as stream:
            eval_records = list(read_jsonl(stream))
    inventory = load_labels(labels) if labels else sorted({r["relation"] for r in records})
    bar = _TrainingBar()
    with bar:
        summary = train_classifier(records, model, output, labels=inventory, eval_records=eval_records,
                                   on_log=lambda step, total, loss: bar.update(step, total, {"loss": loss} if step % 25 == 0 else {}),
                                   **{k: v for k, v in options.items() if v is not None})
    stderr.print(f"classifier written to {output} ({summary['steps']} steps, {summary['train_seconds']:.0f} s)", highlight=False)


class _TrainingBar:
    """A rich progress bar for training steps, with the latest loss."""

    def __init__(self):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.progress = Progress(TextColumn("training"), BarColumn(), MofNCompleteColumn(), TextColumn("steps {task.fields[loss]}"),
                                 TimeElapsedColumn(), TimeRemainingColumn(), console=stderr, disable=not stderr.is_terminal)
        self.task = None

    def __enter__(self):
        self.progress.start()
        return self

    def __exit__(self, *exc):
        self.progress.stop()

    def update(self, step: int, total: int, logs: dict) -> None:
        if self.task is None:
            self.task = self.progress.add_task("train", total=total, loss="")
        fields = {"loss": f"loss {logs['loss']:.4f}"} if "loss" in logs else {}
        self.progress.update(self.task, completed=step, total=total, **fields)
        if "loss" in logs and not stderr.is_terminal:
            stderr.print(f"step {step}/{total} loss {logs['loss']:.4f}", highlight=False)


@command
def extract(
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Adapter or classifier DIR from finetune, smollm2-135m, a hub id or a local folder."),
    input: Optional[Path] = InputOpt,
    output: Optional[Path] = OutputOpt,
    template: Optional[str] = typer.Option(None, "--template", "-t", help="For a base model: simple (default), rag, compact or a FILE."),
    labels: Optional[str] = typer.Option(None, "--labels", "-l", help="For a base model: semeval, tacred, retacred or a FILE."),
    decode: str = typer.Option("constrained", "--decode", help="constrained (only valid labels), generate (free text mapped to a label), knn (label vote of retrieved neighbours)."),
    index: Optional[Path] = typer.Option(None, "--index", help="Index DIR: retrieval-augmented prompts (RAG4RE) or --decode knn."),
    k: int = typer.Option(3, "--k", help="Retrieved examples per record."),
    batch_size: int = typer.Option(16, "--batch-size"),
    max_new_tokens: Optional[int] = typer.Option(None, "--max-new-tokens", help="For --decode generate (default 30) and --task triplets (default 256)."),
    chat: Optional[bool] = typer.Option(None, "--chat/--no-chat", help="Chat-format the prompt (default: as trained; for a base model, when it has a chat template)."),
    dtype: str = typer.Option("auto", "--dtype", help="auto (bf16 where supported), float32, bfloat16."),
    quantize: str = typer.Option("none", "--quantize", help="none, 4bit, 8bit."),
    explain: bool = typer.Option(False, "--explain", help="Add the raw output and per-label scores."),
    resume: bool = typer.Option(False, "--resume", help="Append to -o, skipping ids already written there."),
    shard: Optional[str] = typer.Option(None, "--shard", help="K/N: process the K-th of N contiguous parts of -i FILE; auto: K/N of this Slurm array task."),
    trust_remote_code: bool = typer.Option(False, "--trust-remote-code"),
    task: Optional[str] = typer.Option(None, "--task", help="rc or triplets (end-to-end; adds \"predicted_triplets\"). Default: as the adapter was trained, else rc."),
    style: Optional[str] = TripletFormatOpt,
    shots: int = ShotsOpt,
    shots_from: Optional[Path] = ShotsFromOpt,
    skip_invalid: bool = SkipOpt,
):
    """Label every record with a model (adds "predicted", or "predicted_triplets"), in input order.

    Examples:

        relcli extract --model ./adapter < test.jsonl > preds.jsonl

        relcli extract -m smollm2-135m -t simple -l semeval -i test.jsonl -o zs.jsonl --resume

        relcli extract -m ./adapter --index train.index --k 3 -i test.jsonl --shard 2/8 -o part2.jsonl

        relcli extract -m ./triplet-adapter -i conll04-dev.jsonl | relcli score --scheme triplets

        relcli extract -m smollm2-135m --task triplets --format json --shots 3 --shots-from train.jsonl -l relations.txt -i dev.jsonl
    """
    import itertools

    from relcli.records import dumps, read_jsonl
    from relcli.streams import count_lines, finished_ids, progress, shard_bounds

    if resume and output is None:
        raise UserError("--resume needs -o FILE")
    if decode not in ("constrained", "generate", "knn"):
        raise UserError(f"unknown --decode {decode!r} (constrained, generate, knn)")
    total = count_lines(input)
    if shard and total is None:
        raise UserError("--shard needs -i FILE (the input must be countable)")
    done = finished_ids(output) if resume else set()
    if _extract_task(task, model) == "triplets":
        stats = None
        predictor, extractor = _triplet_predictor(model, template, labels, style, shots, shots_from, index, batch_size,
                                                  max_new_tokens, chat, dtype, quantize, explain, trust_remote_code)
    else:
        extractor = None
        predictor, stats = _predictor(model, template, labels, decode, index, k, batch_size, max_new_tokens or 30,
                                      chat, dtype, quantize, explain, trust_remote_code)
    skipped = SkipReport() if skip_invalid else None
    with open_input(input) as stream:
        records = read_jsonl(stream, skipped=skipped)
        if shard:
            start, stop = shard_bounds(shard, total)
            records, total = itertools.islice(records, start, stop), stop - start
        if done:
            records = (r for r in records if r["id"] not in done)
            total = None if total is None else max(total - len(done), 0)
        with open_output(output, append=resume) as out:
            for record in progress(predictor(records), "extracting", total=total):
                out.write(dumps(record))
                if resume:
                    out.flush()
    report_skipped(skipped)
    if extractor is not None:
        stderr.print(f"{extractor.malformed} malformed triplet fragment(s) in {extractor.records} generations "
                     "(dropped; see --explain)", highlight=False)
    if stats is not None and stats.unmapped:
        stderr.print(f"{stats.unmapped} of {stats.records} generations named no label; they were set to the negative label", highlight=False)
        for example in stats.examples:
            stderr.print(f"  {example}", highlight=False, markup=False)


def _predictor(model, template, labels, decode, index, k, batch_size, max_new_tokens, chat, dtype, quantize, explain, trust_remote_code):
    """The function from a record stream to a prediction stream that the options ask for."""
    from relcli.models import read_meta, resolve_path

    if decode == "knn":
        if index is None:
            raise UserError("--decode knn needs --index DIR")
        from relcli.retrieval import Index, knn_vote

        loaded_index = Index.load(index)

        def vote(batch):
            for record, hits in zip(batch, loaded_index.search(batch, k)):
                label, scores = knn_vote(hits)
                yield dict(record, predicted=label, **({"explain": {"label_scores": scores}} if explain else {}))

        from relcli.records import chunks

        return lambda records: (out for batch in chunks(records, batch_size * 8) for out in vote(batch)), None
    if model is None:
        raise UserError("--model is required (except with --decode knn)")
    meta = read_meta(resolve_path(model)) or {}
    if meta.get("kind") == "classifier":
        from relcli.classifier import load_classifier

        classifier = load_classifier(resolve_path(model), bf16="auto" if dtype == "auto" else dtype == "bfloat16")
        return (lambda records: classifier.predict(records, batch_size=batch_size, explain=explain)), None
    from relcli.extract import Generator, has_chat_template
    from relcli.labels import load_labels
    from relcli.models import load_model
    from relcli.prompts import load_template

    text = load_template(template or meta.get("template") or "simple")
    if labels:
        inventory = load_labels(labels)
    elif meta.get("labels"):
        inventory = meta["labels"]
    else:
        raise UserError("a base model needs --labels (semeval, tacred, retacred or a FILE)")
    loaded = load_model(model, dtype=dtype, quantize=quantize, trust_remote_code=trust_remote_code)
    if chat is None:
        chat = meta["chat"] if "chat" in meta else has_chat_template(loaded.tokenizer) and not loaded.is_seq2seq
    generator = Generator(loaded, text, inventory, chat=chat, decode=decode, batch_size=batch_size,
                          max_new_tokens=max_new_tokens, explain=explain)
    from relcli.prompts import needs_examples

    examples_for = None
    if needs_examples(text):
        if index is None:
            raise UserError("this template needs retrieved examples: pass --index DIR")
        examples_for = _examples_for(index, k)
    return (lambda records: generator.predict(records, examples_for)), generator.stats


# --- score ------------------------------------------------------------------------------------

def _score_tables(result: dict) -> None:
    """The human report on stderr: headline numbers, per-relation table, confusion matrix."""
    from rich.table import Table

    def pct(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    head = Table(title=f"relcli score: {result['n']} records, scheme {result['scheme']}", show_header=False)
    official = result["official"]
    head.add_row(official["name"], pct(official["f1"]))
    for key, name in (("micro", "micro P / R / F1"), ("strict", "strict micro P / R / F1")):
        if key in result:
            head.add_row(name, " / ".join(pct(result[key][k]) for k in ("p", "r", "f1")))
    if result["accuracy"] is not None:
        head.add_row("accuracy", pct(result["accuracy"]))
    head.add_row("macro-F1 over all labels" + (f" (without {result['negative']})" if result["negative"] else ""),
                 pct(result["macro_f1_all"]))
    head.add_row("invalid predictions", str(result["invalid"]["count"]))
    stderr.print(head)

    tables = [("per label", result["per_relation"], "support")]
    if "per_relation" in official:
        tables.append(("official, per relation (both directions)", official["per_relation"], "gold"))
    for title, rows, support in tables:
        table = Table(title=title)
        for name in ("label", "P", "R", "F1", support, *(["wrong dir"] if support == "gold" else [])):
            table.add_column(name, justify="left" if name == "label" else "right")
        for label, s in rows.items():
            extra = [str(s["wrong_direction"])] if support == "gold" else []
            table.add_row(label, pct(s["p"]), pct(s["r"]), pct(s["f1"]), str(s[support]), *extra)
        stderr.print(table)
    if result["invalid"]["examples"]:
        stderr.print("most common invalid predictions: " + ", ".join(
            f"{label!r} x{n}" for label, n in result["invalid"]["examples"].items()), markup=False, highlight=False)

    confusion = result["confusion"]
    columns = list(dict.fromkeys([*confusion, *(c for row in confusion.values() for c in row)]))
    if columns and 24 + 6 * len(columns) <= stderr.width:
        table = Table(title="confusion (rows gold, columns predicted: numbered as the rows)")
        table.add_column("gold")
        for i in range(len(columns)):
            table.add_column(str(i + 1), justify="right")
        for i, gold in enumerate(columns):
            if gold in confusion:
                table.add_row(f"{i + 1} {gold}", *(str(confusion[gold].get(c, "")) for c in columns))
        stderr.print(table)
    elif columns:
        stderr.print(f"confusion matrix: {len(columns)} labels, too wide for this terminal "
                     "(see --format json or --confusion FILE.png)", highlight=False)


@command
def score(
    input: Optional[Path] = InputOpt,
    scheme: str = typer.Option(
        "auto", "--scheme", help="auto | tacred | semeval | triplets. auto: semeval when every gold label is a "
        "SemEval label, triplets for end-to-end records, else tacred."),
    negative: Optional[str] = typer.Option(
        None, "--negative", help="The negative label (default: the inventory's `no_relation`/`Other`, else `no_relation`)."),
    labels: Optional[str] = typer.Option(
        None, "--labels", "-l", help="Label inventory deciding which predictions are valid: semeval, tacred, tacrev, "
        "retacred or a file with one label per line (default: SemEval's for semeval, else the gold labels)."),
    format: str = typer.Option("table", "--format", help="table: human tables on stderr; json: one JSON object on stdout."),
    confusion: Optional[Path] = typer.Option(
        None, "--confusion", help="Also draw the confusion matrix to this image file (needs `pip install 'relcli[plot]'`)."),
    skip_invalid: bool = SkipOpt,
):
    """Score predictions against gold: TACRED micro P/R/F1, official SemEval-2010 macro-F1, triplet P/R/F1.

    Reads records with `relation` and `predicted` (relation classification) or `triplets` and
    `predicted_triplets` (end-to-end), as `relcli extract` writes them.

    Examples:

        relcli score -i preds.jsonl

        relcli extract --model ./adapter < test.jsonl | relcli score --format json | jq .official.f1

        relcli score -i preds.jsonl --scheme tacred --labels retacred --confusion confusion.png
    """
    from relcli.labels import load_labels
    from relcli.records import read_jsonl
    from relcli.scoring import SCHEMES, plot_confusion, score_records, score_validator
    from relcli.streams import open_input

    if scheme not in SCHEMES:
        raise UserError(f"--scheme must be one of {', '.join(SCHEMES)}, not {scheme!r}")
    if format not in ("table", "json"):
        raise UserError(f"--format must be table or json, not {format!r}")
    inventory = load_labels(labels) if labels else None
    skipped = SkipReport() if skip_invalid else None
    with open_input(input) as handle:
        records = read_jsonl(handle, validate=score_validator(), skipped=skipped)
        result = score_records(records, scheme=scheme, negative=negative, labels=inventory)
    report_skipped(skipped)
    if confusion:
        plot_confusion(result["confusion"], confusion)
    if format == "json":
        import orjson

        sys.stdout.buffer.write(orjson.dumps(result) + b"\n")
    else:
        _score_tables(result)

@command
def index(
    output: Path = typer.Option(..., "--output", "-o", help="Index directory to create (replaced atomically)."),
    input: Optional[Path] = InputOpt,
    model: str = typer.Option("minilm", "--model", "-m", help="Sentence embedder: `minilm` (packaged) or a sentence-transformers id/path."),
    embed: str = typer.Option("sentence", "--embed", help="What is embedded: `sentence` (the text) or `marked` (the text with [E1]..[/E1] [E2]..[/E2] around the pair)."),
    m: int = typer.Option(32, "--m", min=2, help="hnswlib M: links per node (recall vs memory)."),
    ef_construction: int = typer.Option(200, "--ef-construction", min=1, help="hnswlib ef_construction: build-time search breadth."),
    batch_size: int = typer.Option(256, "--batch-size", min=1, help="Records embedded per batch (bounds memory)."),
    append: bool = typer.Option(False, "--append", help="Add the records to an existing index (same --model and --embed)."),
    skip_invalid: bool = SkipOpt,
):
    """Embed labelled records into a nearest-neighbour index for retrieval (RAG4RE, kNN).

    Example:

        relcli convert semeval TRAIN_FILE.TXT | relcli index -o train-index --embed marked
    """
    import time

    from transformers.utils import logging as hf_logging

    from relcli.records import read_jsonl
    from relcli.retrieval import build_index
    from relcli.streams import open_input, progress

    hf_logging.disable_progress_bar()  # its weight-loading bars would interleave with ours
    skipped = SkipReport() if skip_invalid else None
    started = time.perf_counter()
    with open_input(input) as lines:
        records = progress(read_jsonl(lines, skipped=skipped), "indexing")
        meta = build_index(
            records, output, model=model, embed=embed, m=m, ef_construction=ef_construction,
            batch_size=batch_size, append=append,
        )
    seconds = time.perf_counter() - started
    report_skipped(skipped)
    stderr.print(
        f"indexed {meta['added']} records ({meta['count']} in all, dim {meta['dimension']}) "
        f"into {output} in {seconds:.1f} s",
        highlight=False,
        soft_wrap=True,
    )


def main() -> None:
    # Our own progress bars and one-line messages are the interface: keep the libraries' quiet.
    # (bitsandbytes warns at import that it cannot fetch an optional CPU kernel from the hub.)
    for name, value in (("TRANSFORMERS_VERBOSITY", "error"), ("HF_HUB_DISABLE_PROGRESS_BARS", "1"),
                        ("HF_DATASETS_DISABLE_PROGRESS_BARS", "1"), ("TOKENIZERS_PARALLELISM", "false")):
        os.environ.setdefault(name, value)
    logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=FutureWarning)  # deprecations inside transformers/peft
    app()
