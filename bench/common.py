"""Shared helpers of the bench scripts: data, timing (median of repeats after a warm-up), the
machine's matmul rate, peak memory of a subprocess, markdown tables and bench/results.json."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any, Callable, Sequence

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "semeval2010_task8"
RESULTS = Path(__file__).resolve().parent / "results.json"


def arguments(doc: str, repeats: int = 3) -> argparse.ArgumentParser:
    """An argument parser with the options every bench script has."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="the SemEval-2010 Task 8 release folder")
    parser.add_argument("--repeats", type=int, default=repeats, help="timed repetitions per measurement (median reported)")
    parser.add_argument("--results", type=Path, default=RESULTS, help="JSON file the results are merged into")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's, one per core); 1 on a busy machine, "
                        "where spinning OpenMP threads waiting for a descheduled sibling waste most of the time")
    return parser


def parse(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """Parse the options and apply --threads."""
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    return args


def semeval(data: Path, split: str, n: int | None = None) -> list[dict]:
    """The first n records of SemEval train or test, read with relcli.formats."""
    import itertools

    from relcli.formats import convert

    if not data.is_dir():
        raise SystemExit(f"no SemEval data at {data} (pass --data)")
    name = {"train": "TRAIN_FILE.TXT", "test": "TEST_FILE_FULL.TXT"}[split]
    return list(itertools.islice(convert("semeval", [data / name]), n))


def timed(fn: Callable[[], Any], repeats: int, warmup: bool = True) -> tuple[float, Any]:
    """Median wall seconds of ``fn()`` over ``repeats`` runs after an untimed warm-up run, and the
    last run's result."""
    if warmup:
        fn()
    seconds, result = [], None
    for _ in range(max(repeats, 1)):
        started = time.perf_counter()
        result = fn()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds), result


def matmul_gflops(dtype: str = "float32", size: int = 2048, repeats: int = 5) -> float:
    """The machine's dense matmul rate in GFLOP/s (median over repeats of a size³ matmul loop)."""
    import torch

    dt = getattr(torch, dtype)
    a, b = torch.randn(size, size, dtype=dt), torch.randn(size, size, dtype=dt)
    loops = 4

    def run():
        for _ in range(loops):
            torch.mm(a, b)

    seconds, _ = timed(run, repeats)
    return 2 * size**3 * loops / seconds / 1e9


def run_peak_rss(cmd: Sequence[str], stdin: Path | None = None, env: dict | None = None) -> tuple[float, float]:
    """Run a command to completion; its peak resident memory in MiB and its wall seconds.

    The command runs under GNU time: a child forked straight from this (large) Python process
    would inherit its resident size in ru_maxrss, so os.wait4 here would over-report."""
    timer = Path("/usr/bin/time")
    if not timer.exists():
        raise RuntimeError("the memory bench needs GNU time (/usr/bin/time; Debian package `time`)")
    started = time.perf_counter()
    with open(stdin or os.devnull, "rb") as source:
        done = subprocess.run([str(timer), "-f", "relcli-peak-rss-kb %M", *map(str, cmd)], stdin=source,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, **(env or {})})
    lines = done.stderr.decode(errors="replace").strip().splitlines()
    if done.returncode:
        raise RuntimeError(f"{' '.join(map(str, cmd))} exited {done.returncode}: {(lines[-2:] or [''])[0]}")
    peak_kb = next(int(line.split()[-1]) for line in reversed(lines) if line.startswith("relcli-peak-rss-kb"))
    return peak_kb / 1024, time.perf_counter() - started


def machine() -> dict:
    """What the numbers were measured on, including how busy the machine was."""
    import torch

    from relcli.device import cpu_flags, cpu_has_bf16, cpu_name, placement

    place = placement()
    return {
        "cpu": cpu_name(),
        "cpu_class": "bf16 units (AVX512-BF16/AMX)" if cpu_has_bf16() else "no bf16 units",
        "simd_flags": " ".join(sorted(f for f in cpu_flags() if f.startswith(("avx", "amx", "fma")))),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "relcli_default": place.describe(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "load_average_1min": round(os.getloadavg()[0], 2),
        "torch": torch.__version__,
    }


def markdown_table(rows: list[dict]) -> str:
    """A markdown table whose columns are the union of the rows' keys, in first-seen order."""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(column, "")) for column in columns) + " |")
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def save_results(path: Path, section: str, payload: dict) -> None:
    """Merge one script's results into the JSON file under ``section`` (written atomically)."""
    results = json.loads(path.read_text()) if path.is_file() else {}
    results[section] = {**payload, "measured_at": time.strftime("%Y-%m-%d %H:%M:%S")}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=2) + "\n")
    os.replace(tmp, path)


def report(path: Path, section: str, title: str, rows: list[dict], notes: Sequence[str] = (), **extra) -> None:
    """Print the section's markdown table (with its notes and the machine) and save them."""
    print(f"### {title}\n\n{markdown_table(rows)}\n")
    print("- machine: " + ", ".join(f"{key} {value}" for key, value in machine().items()))
    for note in notes:
        print(f"- {note}")
    print()
    save_results(path, section, {"title": title, "rows": rows, "notes": list(notes), "machine": machine(), **extra})
