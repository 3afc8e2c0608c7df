"""Run every bench script in turn (each prints its own table and merges into bench/results.json),
then print one combined markdown table of the headline comparisons. `make bench` runs this.

    python bench/run_all.py [--records 500] [--ablation-records 100] [--adapter DIR] [--index DIR] ...
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from common import arguments, markdown_table, save_results

HERE = Path(__file__).resolve().parent


def section(results: dict, name: str) -> list[dict]:
    return results.get(name, {}).get("rows", [])


def headline(results: dict) -> list[dict]:
    """One row per comparison: relcli, the baseline, the ratio, the target."""
    rows = []
    for row in section(results, "extract_vs_baseline"):
        if row["side"].startswith("relcli"):
            rows.append({"measure": f"extract records/s, {row['side'].removeprefix('relcli: ')}, {row['records']} SemEval test",
                         "relcli": f"{row['records/s']:.2f} (macro-F1 {row['macro-F1 %']:.1f}, hw {row['hw fraction %']:.1f}%)",
                         **({"baseline": "", "ratio": "", "target": ""} if "RAG" in row["side"] else
                            {"baseline": baseline, "ratio": f"{row['speedup']:.1f}x", "target": ">= 10x"})})
        else:
            baseline = f"{row['records/s']:.2f} (macro-F1 {row['macro-F1 %']:.1f})"
    train = section(results, "finetune")
    if train:
        base, ours = train
        for unit in ("examples/s", "tokens/s"):
            rows.append({"measure": f"finetune {unit}", "relcli": f"{ours[unit]:.1f}", "baseline": f"{base[unit]:.1f}",
                         "ratio": f"{ours['speedup ' + unit]:.1f}x", "target": ">= 2x" if unit == "tokens/s" else ""})
        rows.append({"measure": "finetune train loss after the same examples", "relcli": f"{ours['train loss']:.3f}",
                     "baseline": f"{base['train loss']:.3f}", "ratio": "", "target": ""})
    for row in section(results, "index"):
        recall = next(key for key in row if key.startswith("recall@"))
        rows.append({"measure": f"index {row['vectors']} vectors: build records/s, hnswlib µs/query, {recall}",
                     "relcli": f"{row['build records/s']:.0f}, {row['hnswlib µs/query (batched)']:.0f}, {row[recall]:.3f}",
                     "baseline": "exact search", "ratio": "", "target": ""})
    memory = section(results, "memory")
    if memory:
        rows.append({"measure": "extract peak RSS MiB, small vs large input",
                     "relcli": f"{memory[0]['peak RSS MiB']:.0f} vs {memory[1]['peak RSS MiB']:.0f}", "baseline": "",
                     "ratio": memory[1]["vs small"], "target": "within 10%"})
    if len(memory) == 4:
        rows.append({"measure": "finetune peak RSS MiB, --quantize none vs 4bit",
                     "relcli": f"{memory[2]['peak RSS MiB']:.0f} vs {memory[3]['peak RSS MiB']:.0f}", "baseline": "",
                     "ratio": memory[3]["vs small"], "target": ""})
    return rows


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--records", type=int, help="SemEval test records of the extract comparison (default: 500 where "
                        "relcli computes in bf16 or fp16, 200 on the fp32 path, where the naive loop takes ~1.4 s per record)")
    parser.add_argument("--ablation-records", type=int, help="records of the extract ablation (default: 100, or 24 on the fp32 path)")
    parser.add_argument("--index-repeats", type=int, help="timed repeats of the index bench (default: --repeats, or 1 on the fp32 path)")
    parser.add_argument("--adapter")
    parser.add_argument("--index")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--scale", type=int, default=100_000)
    parser.add_argument("--large", type=int, default=20_000)
    parser.add_argument("--only", nargs="*", choices=["extract", "finetune", "index", "memory"],
                        default=["extract", "finetune", "index", "memory"],
                        help="scripts to run; none (a bare --only) prints the headline of the saved results")
    args = parser.parse_args()
    from relcli.device import placement

    # Sized so that `make bench` stays near 30 min on a 2-core CPU of either class: on the fp32 path
    # (AMD EPYC, AVX2) 200 + 40 records and 3 index repeats took 35 min without the adapter rows.
    half = placement().half
    args.records = args.records if args.records is not None else (500 if half else 200)
    args.ablation_records = args.ablation_records if args.ablation_records is not None else (100 if half else 24)
    index_repeats = args.index_repeats or (args.repeats if half else 1)
    common = ["--data", str(args.data), "--results", str(args.results)] + (["--threads", str(args.threads)] if args.threads else [])
    extract = ["--records", str(args.records), "--ablation-records", str(args.ablation_records), "--repeats", str(args.repeats)]
    extract += ["--adapter", args.adapter] if args.adapter else []
    extract += ["--index", args.index] if args.index else []
    scripts = {
        "extract": ["extract_speed.py", *extract],
        "finetune": ["finetune_speed.py", "--steps", str(args.steps)],
        "index": ["index_speed.py", "--scale", str(args.scale), "--repeats", str(index_repeats)],
        "memory": ["memory.py", "--large", str(args.large)],
    }
    started = time.perf_counter()
    seconds = {}
    for name in args.only:
        script, *options = scripts[name]
        begun = time.perf_counter()
        subprocess.run([sys.executable, str(HERE / script), *options, *common], check=True)
        seconds[name] = round(time.perf_counter() - begun, 1)
    total = time.perf_counter() - started
    results = json.loads(args.results.read_text())
    timing = f" ({total / 60:.1f} min wall; seconds per script: {seconds})" if seconds else f" (saved in {args.results})"
    print(f"### relcli bench: headline{timing}\n")
    print(markdown_table(headline(results)))
    if seconds:
        save_results(args.results, "run_all", {"wall_seconds": round(total, 1), "script_seconds": seconds})


if __name__ == "__main__":
    main()
