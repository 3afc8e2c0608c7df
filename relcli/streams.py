"""Streams and files: stdin/stdout, atomic files and folders, --resume and --shard plumbing.

Every file or folder relcli writes appears whole or not at all: it is written under a temp name
beside its target and renamed into place, with the permissions the user's umask gives a new file.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Iterator, Mapping, TypeVar

from relcli.errors import UserError

T = TypeVar("T")


def _is_stdio(path: Path | None) -> bool:
    return path is None or str(path) == "-"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def open_input(path: Path | None, param: str = "input") -> Iterator[BinaryIO]:
    """The file at ``path``, or stdin for None / ``-``, opened for binary line iteration."""
    if _is_stdio(path):
        yield sys.stdin.buffer
        return
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        raise UserError(f"no such file: {path}", param=param) from None
    except IsADirectoryError:
        raise UserError(f"{path} is a directory, expected a file", param=param) from None
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror}", param=param) from None
    with handle:
        yield handle


def _temp_beside(path: Path, param: str, directory: bool = False) -> Path:
    """A fresh temp file or folder next to ``path`` with umask permissions (mkstemp makes 0600)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if directory:
            tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
            os.chmod(tmp, 0o777 & ~_umask())
        else:
            fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            os.close(fd)
            tmp = Path(name)
            os.chmod(tmp, 0o666 & ~_umask())
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror}", param=param) from None
    return tmp


def check_writable(path: Path, param: str = "output", directory: bool = False, inputs: Iterable = ()) -> None:
    """Refuse, before any work, an output path that cannot be written as asked, or that is one of
    the ``inputs`` (replacing an input with what was made from it loses the input)."""
    path = Path(path)
    for source in inputs:
        if not _is_stdio(source) and path.exists() and Path(source).exists() and os.path.samefile(path, source):
            raise UserError(f"the output is the input file ({path}): write it to another file", param=param)
    if path.is_dir() and not directory:
        raise UserError(f"{path} is a directory, expected a file", param=param)
    if path.exists() and directory and not path.is_dir():
        raise UserError(f"{path} exists and is not a folder", param=param)
    parent = next((p for p in [path.parent, *path.parent.parents] if p.exists()), Path("."))
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"cannot write {path}: {parent} is not a writable folder", param=param)


@contextlib.contextmanager
def open_output(path: Path | None, param: str = "output", inputs: Iterable = ()) -> Iterator[BinaryIO]:
    """stdout for None / ``-``; otherwise a file written atomically (temp file + rename), which
    must not be one of ``inputs``."""
    if _is_stdio(path):
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    path = Path(path)
    check_writable(path, param, inputs=inputs)
    tmp = _temp_beside(path, param)
    try:
        with open(tmp, "wb") as handle:
            yield handle
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomic(path: Path, data: bytes) -> None:
    with open_output(Path(path)) as out:
        out.write(data)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


@contextlib.contextmanager
def replacing_dir(target: Path, param: str = "output") -> Iterator[Path]:
    """A fresh temp folder beside ``target`` that replaces it on success and vanishes on failure.

    An existing folder is swapped out in one rename where the system allows it, so a kill at any
    moment leaves either the old folder or the new one at ``target``.
    """
    target = Path(target)
    check_writable(target, param, directory=True)
    tmp = _temp_beside(target, param, directory=True)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if not target.exists():
        os.replace(tmp, target)
    elif _exchange(tmp, target):
        shutil.rmtree(tmp, ignore_errors=True)  # now holds the old folder
    else:
        old = _temp_beside(target, param, directory=True)
        os.replace(target, old / target.name)
        os.replace(tmp, target)
        shutil.rmtree(old, ignore_errors=True)


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


def count_lines(path: Path | None) -> int | None:
    """Non-blank lines of a file (None for stdin), for progress totals and sharding."""
    if _is_stdio(path):
        return None
    with open_input(path) as handle:
        return sum(1 for line in handle if line.strip())


@dataclass
class Resume:
    """What an interrupted run left in its output: the ids of its complete lines, in order, and
    how many bytes of the file they fill (a torn last line beyond them is rewritten)."""

    path: Path
    ids: list
    keep: int
    size: int
    ends_line: bool = True

    @classmethod
    def read(cls, path: Path, input: Path | None) -> "Resume":
        """Read (never change) what ``path`` holds; refuses an output that is the input."""
        import orjson

        if input is not None and not _is_stdio(input) and Path(path).exists() and Path(input).exists() \
                and os.path.samefile(path, input):
            raise UserError("the output is the input file: resuming appends to the output, so they must differ", param="output")
        if not Path(path).exists():
            return cls(Path(path), [], 0, 0)
        data = Path(path).read_bytes()
        keep, ids = 0, []
        for line in data.splitlines(keepends=True):
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                break  # a line torn by a kill: everything from here is redone
            if not isinstance(record, dict) or "id" not in record:
                raise UserError(f"{path} holds a line that is not a relcli record; not resuming into it", param="output")
            ids.append(record["id"])
            keep += len(line)
        return cls(Path(path), ids, keep, len(data), data[:keep].endswith(b"\n") or not keep)

    def skip_done(self, records: Iterator[dict]) -> Iterator[dict]:
        """The input records after those already written, checking the written ones are the
        input's first records (by id, in order), so another input's output is never mixed in."""
        for number, written in enumerate(self.ids, start=1):
            record = next(records, None)
            if record is None:
                raise UserError(f"{self.path} holds {len(self.ids)} records, more than the input's {number - 1}: "
                                "not this input's output", param="output")
            if record.get("id") != written:
                raise UserError(f"{self.path} line {number} (id {written!r}) does not match the input's record "
                                f"{number} ({record.get('id')!r}): not this input's output", param="output")
        return records

    @contextlib.contextmanager
    def open(self) -> Iterator[BinaryIO]:
        """The output for appending, after cutting a torn last line and ending a complete one."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "ab") as handle:
            if self.keep < self.size:
                handle.truncate(self.keep)
            elif not self.ends_line:
                handle.write(b"\n")
            yield handle


class Run:
    """What a labelling run reads and where it writes: the shard of an input file (``shard``: K/N
    or auto), what an interrupted run already wrote to ``output`` (``resume``) and the progress
    total. A shard needs an input file and resuming an output file (the caller checks both)."""

    def __init__(self, input: Path | None, output: Path | None, *, resume: bool = False, shard: str | None = None):
        if not _is_stdio(output):
            check_writable(output, inputs=[input])
        self.output, self.total = output, count_lines(input)
        self.bounds = shard_bounds(shard, self.total) if shard is not None and self.total is not None else None
        self.done = Resume.read(output, input) if resume else None

    def select(self, records: Iterable[dict]) -> Iterator[dict]:
        """The input records this run labels: its shard, less what an interrupted run wrote."""
        import itertools

        if self.bounds:
            records, self.total = itertools.islice(records, *self.bounds), self.bounds[1] - self.bounds[0]
        if self.done:
            records = self.done.skip_done(iter(records))
            self.total = None if self.total is None else max(self.total - len(self.done.ids), 0)
        return iter(records)

    @contextlib.contextmanager
    def writer(self) -> Iterator[Callable[[dict], None]]:
        """A function that writes one record: appended and flushed line by line when resuming,
        else into the output that replaces ``output`` whole at the end."""
        from relcli.records import dumps

        with (self.done.open() if self.done else open_output(self.output)) as out:
            def write(record: dict) -> None:
                out.write(dumps(record))
                if self.done:
                    out.flush()

            yield write


def read_all(path: Path | None, param: str, **options) -> list | None:
    """Every record of a JSONL file (None without a path); ``options`` go to ``read_jsonl``."""
    from relcli.records import read_jsonl

    if path is None:
        return None
    with open_input(path, param=param) as stream:
        try:
            return list(read_jsonl(stream, **options))
        except UserError as exc:  # a bad line of this file, not of the main input
            exc.param = exc.param or param
            raise


def array_shard(environ: Mapping[str, str]) -> tuple[int, int]:
    """Shard `auto`: (K, N) of the Slurm array task whose environment is ``environ``.

    N is SLURM_ARRAY_TASK_COUNT and K the position of SLURM_ARRAY_TASK_ID among the array's
    indices, counted from SLURM_ARRAY_TASK_MIN in steps of SLURM_ARRAY_TASK_STEP (1 when unset), so
    `--array=0-3`, `--array=1-4` and `--array=0-6:2` all give shards 1/4 .. 4/4 in task order
    (`%` throttles change nothing). Refused: an index list that is not such a range (`1,2,5`: one
    task cannot know its position), and an array of one task, which is what resubmitting a
    single task with `sbatch --array=2` makes: it would process every record into that task's
    part (requeue the task with `scontrol requeue JOB_2` instead: it keeps the array's numbers).
    """
    if "SLURM_ARRAY_TASK_ID" not in environ:
        raise UserError("auto works inside a Slurm array job only; this is not one a Slurm array job (SLURM_ARRAY_TASK_ID is unset); "
                        "submit with sbatch --array=0-N or give K/N", param="shard")

    def number(name: str, default: int | None = None) -> int:
        value = environ.get(name)
        if value is None and default is not None:
            return default
        try:
            return int(value)
        except (TypeError, ValueError):
            raise UserError(f"auto: {name}={value!r} is not a number", param="shard") from None

    task, count, first = number("SLURM_ARRAY_TASK_ID"), number("SLURM_ARRAY_TASK_COUNT"), number("SLURM_ARRAY_TASK_MIN")
    step = number("SLURM_ARRAY_TASK_STEP", 1)
    last = number("SLURM_ARRAY_TASK_MAX", first + (count - 1) * step)
    if count < 2:
        raise UserError(f"auto: array job of one task (index {task}): it would process the whole input; "
                        "rerun a task of a larger array with scontrol requeue, or give K/N", param="shard")
    if step < 1 or last != first + (count - 1) * step or (task - first) % step or not first <= task <= last:
        raise UserError(f"auto: array indices are not a range like 0-{count - 1} or 0-{2 * (count - 1)}:2 "
                        f"(task {task} of {count}, min {first}, max {last}, step {step}); give K/N", param="shard")
    return (task - first) // step + 1, count


def shard_bounds(spec: str, total: int, environ: Mapping[str, str] | None = None) -> tuple[int, int]:
    """`K/N` -> the [start, stop) record range of shard K (1-based) of N contiguous shards, so
    concatenating shards 1..N reproduces one full run in order. `auto` takes K/N from the Slurm
    array task running it (``environ``, default os.environ): see array_shard."""
    if spec == "auto":
        k, n = array_shard(os.environ if environ is None else environ)
    else:
        try:
            k, n = (int(part) for part in spec.split("/"))
        except ValueError:
            raise UserError(f"{spec!r}: expected K/N (e.g. 2/8) or auto", param="shard") from None
        if not 1 <= k <= n:
            raise UserError(f"{spec!r}: K must be between 1 and N", param="shard")
    return total * (k - 1) // n, total * k // n
