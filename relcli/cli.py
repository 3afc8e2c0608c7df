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
    app()
