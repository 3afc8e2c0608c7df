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


def main() -> None:
    app()
