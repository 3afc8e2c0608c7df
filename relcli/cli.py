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


def main() -> None:
    app()


@app.callback()
def _commands() -> None:
    # Keeps `relcli CMD` a group even while a branch defines a single command.
    pass


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
