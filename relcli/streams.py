"""Command-line plumbing shared by the subcommands: input/output streams and progress bars.

Only ``cli.py`` and this module know about stdin/stdout/stderr; library modules take and return
Python objects.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator, Mapping, TypeVar

from relcli.errors import UserError

T = TypeVar("T")


def _is_stdio(path: Path | None) -> bool:
    return path is None or str(path) == "-"


@contextlib.contextmanager
def open_input(path: Path | None) -> Iterator[BinaryIO]:
    """The file at ``path``, or stdin for None / ``-``, opened for binary line iteration."""
    if _is_stdio(path):
        yield sys.stdin.buffer
        return
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        raise UserError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise UserError(f"{path} is a directory, expected a JSONL file") from None
    with handle:
        yield handle


@contextlib.contextmanager
def open_output(path: Path | None, append: bool = False) -> Iterator[BinaryIO]:
    """stdout for None / ``-``; otherwise a file written atomically (temp file + rename).

    With ``append`` the file is opened for appending instead, flushed line by line by the caller,
    which is what resumable jobs need: whatever was written before a kill stays.
    """
    if _is_stdio(path):
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if append:
        with open(path, "ab") as handle:
            yield handle
        return
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def progress(items: Iterable[T], description: str, total: int | None = None, unit: str = "records") -> Iterator[T]:
    """Wrap an iterable in a rich progress bar on stderr (silent when stderr is not a terminal)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    if not console.is_terminal:
        yield from items
        return
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn(unit), TimeElapsedColumn()]
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(description, total=total)
        for item in items:
            yield item
            bar.advance(task)


def finished_ids(path: Path) -> set:
    """Ids already written to a JSONL output by an earlier, interrupted run.

    A run killed mid-write can leave a partial last line; it is cut off so the resumed run
    rewrites that record whole.
    """
    import orjson

    if not path.exists():
        return set()
    with open(path, "rb+") as handle:
        data = handle.read()
        complete = data.rfind(b"\n") + 1
        if complete < len(data):
            handle.truncate(complete)
    return {orjson.loads(line)["id"] for line in data[:complete].splitlines() if line.strip()}


def count_lines(path: Path | None) -> int | None:
    """Non-blank lines of a file (None for stdin), for progress totals and sharding."""
    if _is_stdio(path):
        return None
    with open(path, "rb") as handle:
        return sum(1 for line in handle if line.strip())


def array_shard(environ: Mapping[str, str]) -> tuple[int, int]:
    """`--shard auto`: (K, N) of the Slurm array task whose environment is ``environ``.

    N is SLURM_ARRAY_TASK_COUNT and K the position of SLURM_ARRAY_TASK_ID among the array's
    indices, counted from SLURM_ARRAY_TASK_MIN in steps of SLURM_ARRAY_TASK_STEP (1 when unset), so
    `--array=0-3`, `--array=1-4` and `--array=0-6:2` all give shards 1/4 .. 4/4 in task order
    (`%` throttles change nothing). Refused: an index list that is not such a range (`1,2,5`: one
    task cannot know its position), and an array of one task, which is what resubmitting a
    single task with `sbatch --array=2` makes: it would process every record into that task's
    part (requeue the task with `scontrol requeue JOB_2` instead: it keeps the array's numbers).
    """
    if "SLURM_ARRAY_TASK_ID" not in environ:
        raise UserError("--shard auto: not inside a Slurm array job (SLURM_ARRAY_TASK_ID is unset); "
                        "submit with sbatch --array=0-N or pass --shard K/N")

    def number(name: str, default: int | None = None) -> int:
        value = environ.get(name)
        if value is None and default is not None:
            return default
        try:
            return int(value)
        except (TypeError, ValueError):
            raise UserError(f"--shard auto: {name}={value!r} is not a number") from None

    task, count, first = number("SLURM_ARRAY_TASK_ID"), number("SLURM_ARRAY_TASK_COUNT"), number("SLURM_ARRAY_TASK_MIN")
    step = number("SLURM_ARRAY_TASK_STEP", 1)
    last = number("SLURM_ARRAY_TASK_MAX", first + (count - 1) * step)
    if count < 2:
        raise UserError(f"--shard auto: array job of one task (index {task}): it would process the whole input; "
                        "rerun a task of a larger array with scontrol requeue, or pass --shard K/N")
    if step < 1 or last != first + (count - 1) * step or (task - first) % step or not first <= task <= last:
        raise UserError(f"--shard auto: array indices are not a range like 0-{count - 1} or 0-{2 * (count - 1)}:2 "
                        f"(task {task} of {count}, min {first}, max {last}, step {step}); pass --shard K/N")
    return (task - first) // step + 1, count


def shard_bounds(spec: str, total: int, environ: Mapping[str, str] | None = None) -> tuple[int, int]:
    """`K/N` -> the [start, stop) record range of shard K (1-based) of N contiguous shards, so
    concatenating shards 1..N reproduces one full run in order. `auto` takes K/N from the Slurm
    array task running it (``environ``, default os.environ): see array_shard."""
    if spec == "auto":
        k, n = array_shard(os.environ if environ is None else environ)
        return total * (k - 1) // n, total * k // n
    try:
        k, n = (int(part) for part in spec.split("/"))
    except ValueError:
        raise UserError(f"--shard {spec!r}: expected K/N (e.g. 2/8) or auto") from None
    if not 1 <= k <= n:
        raise UserError(f"--shard {spec!r}: K must be between 1 and N")
    return total * (k - 1) // n, total * k // n
