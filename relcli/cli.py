"""The relcli command line: one thin typer function per subcommand.

Each command turns options into a call of a library function, streams records in and out, and
maps errors to exit codes (0 ok, 2 bad usage or input, 1 anything else). Heavy libraries (torch,
transformers) are imported inside the commands that need them, so `relcli --help`, `convert` and
`score` start fast.
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from relcli.errors import UserError
from relcli.records import SkipReport

app = typer.Typer(
    name="relcli",
    help="Relation extraction with fine-tuned language models, retrieval and official scoring.\n\n"
    "Stages read and write JSONL so they pipe together:\n\n"
    "  relcli convert semeval TEST_FILE_FULL.TXT | relcli extract --model ./adapter | relcli score",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
)
stderr = Console(stderr=True)


@app.callback()
def _group() -> None:
    # Keeps `relcli CMD` a subcommand even while a branch defines only one command.
    pass

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
        None, "--labels", help="Label inventory deciding which predictions are valid: semeval, tacred, tacrev, "
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


def main() -> None:
    app()
