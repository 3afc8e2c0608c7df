"""The human side of stderr: one-line messages, skip reports, the training bar and score tables.

User text (records, labels, paths) is printed as plain text, never read as rich markup.
"""

from __future__ import annotations

from typing import Iterable, Iterator, TypeVar

from rich.console import Console
from rich.text import Text

from relcli.records import SkipReport

T = TypeVar("T")
stderr = Console(stderr=True, soft_wrap=True, highlight=False)  # one message, one line, whatever the width


def say(message: str) -> None:
    stderr.print(Text(message))


def error(message: str) -> None:
    stderr.print(Text.assemble(("error:", "red"), " ", message))


def report_skipped(skipped: SkipReport | None) -> None:
    if skipped and skipped.count:
        say(f"skipped {skipped.count} invalid line(s)")
        for message in skipped.examples:
            say(f"  {message}")


def score_tables(result: dict) -> None:
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
            table.add_row(Text(label), pct(s["p"]), pct(s["r"]), pct(s["f1"]), str(s[support]), *extra)
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
                table.add_row(Text(f"{i + 1} {gold}"), *(str(confusion[gold].get(c, "")) for c in columns))
        stderr.print(table)
    elif columns:
        stderr.print(f"confusion matrix: {len(columns)} labels, too wide for this terminal "
                     "(see --format json or --confusion FILE.png)", highlight=False)


def calibration_table(result: dict) -> None:
    """`score --calibrate` on stderr: micro P/R/F1 as predicted, at margin 0 and at the margin found."""
    from rich.table import Table

    table = Table(title=f"relcli score --calibrate: {result['n']} records, negative label {result['negative']!r}")
    for name in ("predictions", "margin", "P", "R", "F1", "guessed"):
        table.add_column(name, justify="left" if name == "predictions" else "right")
    rows = [("as given (predicted)", "", result.get("given")), ("argmax of label scores", "0", result["before"]),
            ("calibrated", str(result['margin']), result["after"])]
    for name, margin, s in rows:
        if s is not None:
            table.add_row(name, margin, *(f"{s[k]:.2f}" for k in ("p", "r", "f1")), str(s["guessed"]))
    stderr.print(table)
    say(f"apply it with: relcli extract --negative-margin {result['margin']} (tuned on these records: scores on them are optimistic)")


class TrainingBar:
    """A rich progress bar for training steps, with the latest loss; ``track`` shows the work before
    training (a teacher labelling the records) in the same display, as rich allows one at a time."""

    def __init__(self, console: Console = stderr):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[unit]} {task.fields[loss]}"), TimeElapsedColumn(),
                                 TimeRemainingColumn(), console=console, disable=not console.is_terminal)
        self.console, self.task = console, None

    def __enter__(self):
        self.progress.start()
        return self

    def __exit__(self, *exc):
        self.progress.stop()

    def update(self, step: int, total: int, logs: dict) -> None:
        if self.task is None:
            self.task = self.progress.add_task("training", total=total, unit="steps", loss="")
        fields = {"loss": f"loss {logs['loss']:.4f}"} if "loss" in logs else {}
        self.progress.update(self.task, completed=step, total=total, **fields)
        if "loss" in logs and not self.console.is_terminal:
            say(f"step {step}/{total} loss {logs['loss']:.4f}")

    def track(self, items: Iterable[T], description: str, total: int) -> Iterator[T]:
        task = self.progress.add_task(description, total=total, unit="records", loss="")
        for item in items:
            yield item
            self.progress.advance(task)
        self.progress.remove_task(task)
