"""The benchmark suite: `nox -s bench` (or `python bench/run.py`).

Every figure is a ratio of two variants measured side by side in one run, alternating
their order over the repeats; absolute times on a shared machine drift, ratios less so.
Writes bench/results/latest.json and bench/results/latest.md. `--tiny` runs every figure in
miniature (a few short keys, one repeat, 1 worker) into a temporary folder: a check that the
suite runs, not a measurement (tests/test_bench.py).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import psutil

from sdt_core.acceleration.equivalence import compare_runs

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
PREFIX = "BENCH-RESULT "
#: Options given to every variant (`--tiny`'s data and cluster), after the figure's own.
VARIANT_OPTIONS: list[str] = []
#: The miniature of `--tiny`: the defaults it changes, and the variants' options.
TINY = {
    "repeats": 1,
    "synthetic": 1,
    "synthetic_original": 1,
    "keys": 20,
    "data_systems": 1,
    "data_days": 20,
    "data_keys": 20,
    "loss_key": "synthetic-000",
    "stage_keys": ["synthetic-000"],
    "tail_keys": 6,
    "first_keys": 2,
}
TINY_VARIANT_OPTIONS = ["--sample", "real=false", "--sample", "lengths=[10]", "--workers", "1"]


def measure(args: list[str]) -> dict[str, Any]:
    """Run one variant in its own process; add wall time and the largest process's peak RSS."""
    start = time.perf_counter()
    errors = tempfile.TemporaryFile("w+")
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "variants.py"), *args, *VARIANT_OPTIONS],
        stdout=subprocess.PIPE,
        stderr=errors,
        text=True,
    )
    peak = tree_peak = 0.0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak, tree_peak
        root = psutil.Process(proc.pid)
        while not stop.wait(0.1):
            try:
                rss = [p.memory_info().rss / 2**20 for p in [root, *root.children(recursive=True)] if p.is_running()]
            except psutil.Error:
                continue
            peak, tree_peak = max([peak, *rss]), max(tree_peak, sum(rss))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = proc.communicate()
    stop.set()
    sampler.join()
    lines = [line for line in out.splitlines() if line.startswith(PREFIX)]
    errors.seek(0)
    failure = errors.read()[-3000:]
    errors.close()
    if proc.returncode or not lines:
        raise RuntimeError(f"variant {args} failed ({proc.returncode}):\n{failure}")
    result = json.loads(lines[-1][len(PREFIX) :])
    return result | {"wall_s": time.perf_counter() - start, "largest_process_mb": peak, "process_tree_mb": tree_peak}


def stats(values: list[float]) -> dict[str, float]:
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def side_by_side(
    repeats: int, a: list[str], b: list[str], run: Callable[[list[str]], dict[str, Any]] = measure
) -> tuple[list[dict], list[dict]]:
    """`repeats` runs of each, in the order a b, b a, a b, ..."""
    first, second = in_turn(repeats, [a, b], run)
    return first, second


def in_turn(
    repeats: int, variants: list[list[str]], run: Callable[[list[str]], dict[str, Any]] = measure
) -> list[list[dict]]:
    """`repeats` runs of each variant, each round in the order of the last reversed (a b c, c b a, ...)."""
    results: list[list[dict]] = [[] for _ in variants]
    for i in range(repeats):
        order = list(zip(results, variants, strict=True))
        for runs, args in order if i % 2 == 0 else reversed(order):
            runs.append(run(args))
            print(f"  {' '.join(args)}: {runs[-1]['wall_s']:.1f} s", flush=True)
    return results


def efficiency(rows: list[dict], wall: float, threads: int) -> dict[str, float]:
    """Parallel efficiency and the distance to the lower bound, from the runner's rows."""
    durations = [r["total_s"] for r in rows]
    span = max(r["start_time"] + r["total_s"] for r in rows) - min(r["start_time"] for r in rows)
    bound = max(max(durations), sum(durations) / threads)
    return {
        "efficiency": sum(durations) / (span * threads),
        "wall_over_bound": span / bound,
        "processing_s": span,
        "lower_bound_s": bound,
        "run_wall_s": wall,
    }


def bench_runner(repeats: int, synthetic: int, loss: bool) -> dict[str, Any]:
    extra = ["--synthetic", str(synthetic)] + (["--loss"] if loss else [])
    ours, original = side_by_side(repeats, ["runner-ours", *extra], ["runner-original", *extra])
    ratio_wall = [o["wall_s"] / r["wall_s"] for o, r in zip(ours, original, strict=True)]
    ratio_mem = [o["largest_process_mb"] / r["largest_process_mb"] for o, r in zip(ours, original, strict=True)]
    return {
        "systems": synthetic + 2,
        "wall_s": {"ours": stats([o["wall_s"] for o in ours]), "original": stats([r["wall_s"] for r in original])},
        "largest_process_mb": {
            "ours": stats([o["largest_process_mb"] for o in ours]),
            "original": stats([r["largest_process_mb"] for r in original]),
        },
        "wall_ratio": stats(ratio_wall),
        "memory_ratio": stats(ratio_mem),
        "ok": {"ours": [o["ok"] for o in ours], "original": [r["ok"] for r in original]},
        "parallel": [efficiency(o["rows"], o["seconds"], threads=2) for o in ours],
    }


def bench_fast_exact(repeats: int, variant: list[str]) -> dict[str, Any]:
    """The fast path against SDT as released: same data, same cluster, side by side."""
    fast, exact = side_by_side(repeats, variant, [*variant, "--exact"])
    pairs = list(zip(fast, exact, strict=True))
    differences = [compare_runs(f["rows"], e["rows"]) for f, e in pairs]
    return {
        "variant": " ".join(variant),
        "repeats": repeats,
        "keys": len(fast[0]["rows"]),
        "wall_s": {"fast": stats([f["wall_s"] for f in fast]), "exact": stats([e["wall_s"] for e in exact])},
        "wall_ratio": stats([f["wall_s"] / e["wall_s"] for f, e in pairs]),
        "tree_mb": {
            "fast": stats([f["process_tree_mb"] for f in fast]),
            "exact": stats([e["process_tree_mb"] for e in exact]),
        },
        "tree_ratio": stats([f["process_tree_mb"] / e["process_tree_mb"] for f, e in pairs]),
        "differences": differences[0] if any(differences) else {},
        "equal_runs": sum(not d for d in differences),
        "throughput": {"fast": throughput(fast), "exact": throughput(exact)},
        "key_peak_mb": {
            mode: max(r.get("peak_memory_mb") or 0 for run in runs for r in run["rows"])
            for mode, runs in (("fast", fast), ("exact", exact))
        },
    }


def throughput(runs: list[dict[str, Any]], threads: int = 2) -> dict[str, Any]:
    """System-years per core-hour of whole runs (start-up included) and of the keys alone."""
    years = sum(r.get("days") or 0 for r in runs[0]["rows"] if r["status"] == "ok") / 365
    per_run = [years / (run["wall_s"] * threads / 3600) for run in runs]
    per_key = [years / (sum(r["total_s"] for r in run["rows"]) / 3600) for run in runs]
    return {"system_years": years, "per_core_hour": stats(per_run), "per_thread_hour_of_keys": stats(per_key)}


def fargate_cost(seconds_per_system_year: float, exact: bool, system_years: float = 1000) -> dict[str, Any]:
    """Cost of `system_years` on Fargate workers sized for the mode, from `sdt plan fargate`'s prices."""
    from sdt_core.job.memory import worker_memory_gib
    from sdt_core.plugs.discovery import registry

    threads = 4  # 4 vCPU worker tasks
    memory = max(8, int(worker_memory_gib(threads, exact=exact) + 0.999))
    if memory > 30:  # the largest 4 vCPU task: fewer keys at once per task
        threads = 3 if worker_memory_gib(3, exact=exact) <= 30 else 2
        memory = 30
    given = {"workers": 10, "threads": threads, "memory": float(memory), "region_name": "us-east-1"}
    plan = registry().plan("fargate", registry().settings("fargate", given))
    spot = registry().plan("fargate", registry().settings("fargate", given | {"spot": True}))
    workers = next(m for m in plan.machines if m.role == "workers")
    hours = system_years * seconds_per_system_year / 3600 / (workers.count * threads)
    return {
        "system_years": system_years,
        "worker_task": f"4 vCPU, {memory} GiB, {threads} threads",
        "hours_on_10_workers": hours,
        "usd": hours * plan.cost_per_hour,
        "usd_spot": hours * spot.cost_per_hour,  # workers on Fargate Spot, the scheduler on-demand
        "prices_taken": plan.prices.taken,
    }


def with_fargate_cost(result: dict[str, Any]) -> dict[str, Any]:
    """Add the cost of 1,000 system-years on Fargate, from the keys' measured time per system-year."""
    cost = {}
    for mode in ("fast", "exact"):
        per_hour = result["throughput"][mode]["per_thread_hour_of_keys"]["median"]
        cost[mode] = fargate_cost(3600 / per_hour, exact=mode == "exact")
    return result | {"fargate": cost}


def bench_stages(keys: list[str]) -> dict[str, Any]:
    args = ["stages", *(f"--key={k}" for k in keys)]
    return {"fast": measure(args), "exact": measure([*args, "--exact"])}


def bench_order(repeats: int, synthetic: int) -> dict[str, Any]:
    extra = ["--synthetic", str(synthetic)]
    biggest, given = side_by_side(repeats, ["runner-ours", *extra], ["runner-ours", *extra, "--given-order"])
    eff = {
        name: [efficiency(r["rows"], r["seconds"], 2) for r in runs]
        for name, runs in (("biggest_first", biggest), ("given_order", given))
    }
    return {
        name: {k: stats([e[k] for e in runs]) for k in ("efficiency", "wall_over_bound", "processing_s")}
        for name, runs in eff.items()
    }


def bench_first_key(repeats: int, keys: int) -> dict[str, Any]:
    """A worker's first key against its warm keys (one worker, `keys` one-year synthetic systems
    in turn), with warm workers (the default) and without (`--cold`), side by side."""
    variant = ["first-key", "--synthetic", str(keys), "--sample", "real=false"]
    warm, cold = side_by_side(repeats, variant, [*variant, "--cold"])
    runs = {"warm": warm, "cold": cold}
    return {
        "keys": keys,
        "differences": [unequal(w["rows"], c["rows"]) for w, c in zip(warm, cold, strict=True)],
        "ok": {name: [r["ok"] for r in results] for name, results in runs.items()},
        **{
            figure: {name: stats([r[figure] for r in results]) for name, results in runs.items()}
            for figure in ("overhead_s", "first_key_s", "warm_key_s", "seconds", "wall_s")
        },
    }


def unequal(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> list[str]:
    """The result fields of two runs of the same keys that are not identical (no tolerance), as text."""
    from sdt_core.acceleration.equivalence import is_result_field

    by_key = [{str(row["key"]): row for row in rows} for rows in (a, b)]
    return [
        f"{key} {field}"
        for key in sorted({*by_key[0], *by_key[1]})
        for field in sorted({*by_key[0].get(key, {}), *by_key[1].get(key, {})})
        if is_result_field(field) and by_key[0].get(key, {}).get(field) != by_key[1].get(key, {}).get(field)
    ]


def first_key_lines(results: dict[str, Any]) -> list[str]:
    """The rows of the warm-up figure: the first key's overhead over a warm key, warm workers and not."""
    if "first_key" not in results:
        return []
    r = results["first_key"]
    return [
        f"| first key's overhead over a warm key (1 worker, {r['keys']} one-year systems), warm workers vs "
        f"not | {fmt(r['overhead_s']['warm'], ' s')} vs {fmt(r['overhead_s']['cold'], ' s')} | <= 0.5 s |",
        f"| run wall time, start included, warm workers vs not | {fmt(r['wall_s']['warm'], ' s', 1)} vs "
        f"{fmt(r['wall_s']['cold'], ' s', 1)} | |",
        "| results, warm workers vs not | "
        + (
            f"DIFFERENT: {'; '.join(d for run in r['differences'] for d in run)[:300]}"
            if any(r["differences"])
            else f"identical, {r['keys']} keys, {len(r['differences'])} run pairs"
        )
        + " | identical |",
    ]


def on_fresh_cluster(variant: str, keys: int) -> list[str]:
    """Arguments of a scale variant, to run against a 2-worker cluster started for it alone."""
    return [variant, "--keys", str(keys), "--address", "{fresh}"]


def measure_on_fresh_cluster(args: list[str]) -> dict[str, Any]:
    """`sdt up local` in its own process (so the client's memory is the client's), then the variant."""
    cluster = subprocess.Popen(
        [
            Path(sys.executable).with_name("sdt"),
            "up",
            "local",
            "--workers",
            "2",
            "--threads",
            "1",
            "--memory",
            "4",
            "--dashboard-address",
            "127.0.0.1:0",
            "--set",
            "silence_logs=50",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=os.environ | {"PYTHONPATH": str(HERE)},  # the workers import bench/tiny.py
    )
    try:
        address = scheduler_address(cluster.stdout)
        return measure([a.replace("{fresh}", address) for a in args])
    finally:
        cluster.terminate()
        cluster.wait(timeout=60)


def scheduler_address(lines: Iterable[str]) -> str:
    """The address in `sdt up`'s documented "Scheduler: ADDRESS" line (other lines come before it)."""
    seen = []
    for line in lines:
        if line.startswith("Scheduler: "):
            return line.split(maxsplit=1)[1].strip()
        seen.append(line.strip())
    raise RuntimeError(f"sdt up ended without a 'Scheduler: ADDRESS' line; it printed: {seen}")


def bench_scale(repeats: int, keys: int) -> dict[str, Any]:
    ours, raw = side_by_side(
        repeats, on_fresh_cluster("scale-ours", keys), on_fresh_cluster("scale-raw", keys), run=measure_on_fresh_cluster
    )
    ratio = [o["keys_per_s"] / r["keys_per_s"] for o, r in zip(ours, raw, strict=True)]
    return {
        "keys": keys,
        "keys_per_s": {"ours": stats([o["keys_per_s"] for o in ours]), "raw": stats([r["keys_per_s"] for r in raw])},
        "throughput_ratio": stats(ratio),
        "client_peak_mb": {
            "ours": stats([o["peak_rss_mb"] for o in ours]),
            "raw": stats([r["peak_rss_mb"] for r in raw]),
        },
    }


def bench_tail(keys: int) -> dict[str, Any]:
    """A run with a long tail: fixed 2 workers against --adapt 1:2 (worker-seconds held per busy,
    wall time), and fixed 2 workers with a SIGTERM to a worker every 4 s (every key once?)."""
    figures = {name: measure([name, "--keys", str(keys)]) for name in ("tail-fixed", "tail-adapt", "tail-sigterm")}
    fixed, adapt = figures["tail-fixed"], figures["tail-adapt"]
    return figures | {
        "adapt_wall_ratio": adapt["seconds"] / fixed["seconds"],
        "sigterm_wall_overhead": figures["tail-sigterm"]["seconds"] / fixed["seconds"] - 1,
    }


def bench_discovery(repeats: int) -> dict[str, Any]:
    ours_cmd = [sys.executable, "-c", "import sdt_core; sdt_core.list_plugs()"]
    base_cmd = [sys.executable, "-c", "import pluggy, importlib.metadata"]
    times: dict[str, list[float]] = {"ours": [], "baseline": []}
    for i in range(repeats * 10):
        for name, cmd in (("ours", ours_cmd), ("baseline", base_cmd))[:: 1 if i % 2 == 0 else -1]:
            start = time.perf_counter()
            subprocess.run(cmd, check=True)
            times[name].append(time.perf_counter() - start)
    ratio = [o / b for o, b in zip(times["ours"], times["baseline"], strict=True)]
    return {"ms": {k: stats([t * 1000 for t in v]) for k, v in times.items()}, "ratio": stats(ratio)}


def bench_start(repeats: int) -> dict[str, Any]:
    """The local plug's start against a bare LocalCluster's, its workers not warmed up (sdt's own
    overhead), and the start with warm workers (the default: SDT's imports move into it)."""
    cold, raw, warm = in_turn(repeats * 2, [["start-ours", "--cold"], ["start-raw"], ["start-ours"]])
    ratio = [o["seconds"] / r["seconds"] for o, r in zip(cold, raw, strict=True)]
    return {
        "seconds": {name: stats([o["seconds"] for o in runs]) for name, runs in (("ours", cold), ("raw", raw))},
        "ratio": stats(ratio),
        "warm_seconds": stats([w["seconds"] for w in warm]),
    }


def bench_data_loading(repeats: int, systems: int, days: int) -> dict[str, Any]:
    """Load time per system-year of each source against the fast pipeline's, in one process (bench/loading.py)."""
    args = ["loading", "--systems", str(systems), "--days", str(days), "--repeats", str(max(2, repeats))]
    return measure(args)


def bench_data_listing(keys: int) -> dict[str, Any]:
    """Keys of a dataset of `keys` partition folders, listed from the names alone."""
    return measure(["listing", "--keys", str(keys)])


def data_lines(results: dict[str, Any]) -> list[str]:
    """The rows of the data figures: each source's load per system-year against the fast pipeline."""
    lines = []
    if "data_loading" in results:
        r = results["data_loading"]
        pipeline = r["pipeline_s_per_system_year"]
        for name, ratio in r["ratio"].items():
            load = r["load_s_per_system_year"][name]["median"]
            target = "<= 0.1" if "csv" not in name else ""
            lines.append(
                f"| data load per system-year, {name}, vs the fast pipeline ({r['systems']} systems of "
                f"{r['days']} days) | {fmt(ratio, '', 3)} x ({load:.3f} s vs {pipeline:.2f} s) | {target} |"
            )
    if "data_listing" in results:
        r = results["data_listing"]
        lines.append(
            f"| keys of a partitioned dataset of {r['keys']:,} systems (folder names, no file read) | "
            f"{r['seconds']:.2f} s (a bare os.listdir: {r['listdir_seconds']:.2f} s) | seconds |"
        )
    return lines


def machine() -> dict[str, Any]:
    packages = ("sdt-core", "dask", "distributed", "solar-data-tools", "pandas", "numpy")
    return {
        "date": datetime.date.today().isoformat(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "load_average_at_start": [round(v, 1) for v in os.getloadavg()],
        "platform": platform.platform(),
        "versions": {p: version(p) for p in packages},
    }


def load_note(m: dict[str, Any], merged: list[str] | None = None) -> str:
    """The machine's load when the run started: on a shared machine it moves every figure."""
    if "load_average_at_start" not in m:
        return ""
    note = f" Load average at the start (1, 5, 15 min): {', '.join(map(str, m['load_average_at_start']))}."
    if merged:  # `--merge`: the date and load are those of these figures' run only
        note += f" Date and load of the figures {', '.join(merged)} (--merge); the others are kept from earlier runs."
    return note


def fmt(s: dict[str, float], unit: str = "", digits: int = 2) -> str:
    return f"{s['median']:.{digits}f}{unit} ({s['min']:.{digits}f} to {s['max']:.{digits}f})"


def table(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [
        f"# sdt-core benchmarks, {m['date']}",
        "",
        f"{m['cpus']} CPUs, {m['memory_gib']} GiB, Python {m['python']}; "
        + ", ".join(f"{k} {v}" for k, v in m["versions"].items())
        + ".",
        "Each figure: median (min to max) over the repeats; ratios are ours / the other, measured side by side."
        + load_note(m, results.get("merged")),
        "",
        "| figure | value | target |",
        "| --- | --- | --- |",
    ]
    for name, key in (("pipeline only", "runner_pipeline"), ("with loss analysis", "runner_loss")):
        if key in results:
            r = results[key]
            lines += [
                f"| runner wall time vs the original, {name}, {r['systems']} systems | {fmt(r['wall_ratio'])} x "
                f"({r['wall_s']['ours']['median']:.0f} s vs {r['wall_s']['original']['median']:.0f} s) | <= 0.8 |",
                f"| runner peak memory (largest process) vs the original, {name} | {fmt(r['memory_ratio'])} x "
                f"({r['largest_process_mb']['ours']['median']:.0f} vs "
                f"{r['largest_process_mb']['original']['median']:.0f} MB) | <= 0.7 |",
            ]
    lines += fast_path_lines(results)
    if "runner_pipeline" in results:
        p = results["runner_pipeline"]["parallel"]
        lines.append(f"| parallel efficiency, pipeline only | {fmt(stats([e['efficiency'] for e in p]))} | >= 0.9 |")
        lines.append(f"| wall time / lower bound | {fmt(stats([e['wall_over_bound'] for e in p]))} | <= 1.1 |")
    if "order" in results:
        for name, o in results["order"].items():
            lines.append(
                f"| order {name.replace('_', ' ')}: efficiency; wall / bound | {fmt(o['efficiency'])}; "
                f"{fmt(o['wall_over_bound'])} | |"
            )
    if "scale" in results:
        s = results["scale"]
        lines += [
            f"| scale: throughput vs raw client.map, {s['keys']:,} keys | {fmt(s['throughput_ratio'])} x "
            f"({s['keys_per_s']['ours']['median']:.0f} vs {s['keys_per_s']['raw']['median']:.0f} keys/s) | >= 0.8 |",
            f"| scale: client peak memory | {fmt(s['client_peak_mb']['ours'], ' MB', 0)} "
            f"(raw client.map: {fmt(s['client_peak_mb']['raw'], ' MB', 0)}) | < 500 MB |",
        ]
    if "discovery" in results:
        d = results["discovery"]
        lines.append(
            f"| discovery vs `import pluggy, importlib.metadata` | {fmt(d['ratio'])} x "
            f"({d['ms']['ours']['median']:.0f} vs {d['ms']['baseline']['median']:.0f} ms) | <= 1.5 |"
        )
    if "start" in results:
        s = results["start"]
        lines.append(
            f"| start overhead vs Client(LocalCluster(...)), workers not warmed up | {fmt(s['ratio'])} x "
            f"({s['seconds']['ours']['median']:.2f} vs {s['seconds']['raw']['median']:.2f} s) | <= 1.1 |"
        )
        if "warm_seconds" in s:
            lines.append(f"| start with warm workers (SDT's imports done in it) | {fmt(s['warm_seconds'], ' s')} | |")
    lines += first_key_lines(results)
    lines += tail_lines(results)
    lines += data_lines(results)
    return "\n".join(lines) + "\n" + stage_table(results)


def tail_lines(results: dict[str, Any]) -> list[str]:
    """The long-tail run: fixed 2 workers, --adapt 1:2, and SIGTERM to a worker every few seconds."""
    if "tail" not in results:
        return []
    t = results["tail"]
    fixed, adapt, stopped = t["tail-fixed"], t["tail-adapt"], t["tail-sigterm"]
    keys = fixed["rows"]
    return [
        f"| long tail, {keys} keys: worker-seconds held / busy, --adapt 1:2 vs fixed 2 workers | "
        f"{adapt['held_per_busy']:.2f} vs {fixed['held_per_busy']:.2f} | <= 1.15, and below fixed |",
        f"| long tail: wall time, --adapt 1:2 / fixed 2 workers | {t['adapt_wall_ratio']:.2f} x "
        f"({adapt['seconds']:.1f} s vs {fixed['seconds']:.1f} s) | <= 1.1 |",
        f"| long tail with SIGTERM to a worker every 4 s ({stopped['sigterms']} sent): keys once each; wall overhead | "
        f"{stopped['unique_keys']} of {keys} keys, {stopped['rows']} rows, {stopped['ok']} ok; "
        f"{t['sigterm_wall_overhead']:+.0%} | every key once |",
    ]


def equality(r: dict[str, Any], repeats: int) -> str:
    repeats = r.get("repeats", repeats)  # a merged run's figures have their own
    if r["differences"]:
        return f"DIFFERENT: {json.dumps(r['differences'])[:300]}"
    return f"equal by the rule, {r['keys']} keys, {r['equal_runs']} of {repeats} run pairs"


def fast_path_lines(results: dict[str, Any]) -> list[str]:
    """The rows of the fast path's figures: fast / exact, side by side."""
    lines = []
    repeats = results["repeats"]
    if "fast_pipeline" in results:
        r = results["fast_pipeline"]
        t = r["throughput"]
        lines += [
            f"| fast path: pipeline wall time, 2 real + {r['keys'] - 2} synthetic systems | {fmt(r['wall_ratio'])} x "
            f"({r['wall_s']['fast']['median']:.0f} s vs {r['wall_s']['exact']['median']:.0f} s) | <= 0.25 |",
            f"| fast path: peak memory of the whole process tree | {fmt(r['tree_ratio'])} x "
            f"({r['tree_mb']['fast']['median']:.0f} vs {r['tree_mb']['exact']['median']:.0f} MB) | <= 0.2 |",
            f"| fast path: peak memory of a worker while one key ran | {r['key_peak_mb']['fast']:.0f} MB vs "
            f"{r['key_peak_mb']['exact']:.0f} MB | |",
            f"| fast path: results of the pipeline runs | {equality(r, repeats)} | identical / 1e-6 |",
            f"| system-years per core-hour, whole run (start-up included), fast vs exact | "
            f"{fmt(t['fast']['per_core_hour'], '', 0)} vs {fmt(t['exact']['per_core_hour'], '', 0)} | |",
            f"| system-years per thread-hour of the keys alone, fast vs exact | "
            f"{fmt(t['fast']['per_thread_hour_of_keys'], '', 0)} vs "
            f"{fmt(t['exact']['per_thread_hour_of_keys'], '', 0)} | |",
        ]
        for mode in ("fast", "exact"):
            c = results["fast_pipeline"]["fargate"][mode]
            lines.append(
                f"| 1,000 system-years on Fargate ({mode}), `sdt plan` prices of {c['prices_taken']} | "
                f"{c['usd']:.2f} USD on-demand, "
                + (f"{c['usd_spot']:.2f} USD with workers on spot; " if "usd_spot" in c else "spot not priced then; ")
                + f"{c['hours_on_10_workers']:.2f} h on 10 tasks of {c['worker_task']} | |"
            )
    if "fast_loss" in results:
        r = results["fast_loss"]
        lines += [
            f"| fast path: `--loss-analysis` wall time, the 490-day sample file | {fmt(r['wall_ratio'])} x "
            f"({r['wall_s']['fast']['median']:.0f} s vs {r['wall_s']['exact']['median']:.0f} s) | <= 0.6 |",
            f"| fast path: results of the loss factor analysis | {equality(r, repeats)} | identical / 1e-6 |",
        ]
    if "fast_proof" in results:
        r = results["fast_proof"]
        lines.append(
            f"| fast path: the proof set (2 real + 20 synthetic of 1 to 800 days, with loss analysis) | "
            f"{equality(r, 1)}; {fmt(r['wall_ratio'])} x wall | identical / 1e-6 |"
        )
    return lines


def stage_table(results: dict[str, Any]) -> str:
    """Where the pipeline's time goes, per key, fast and exact."""
    if "stages" not in results:
        return ""
    fast, exact = results["stages"]["fast"], results["stages"]["exact"]
    lines = [
        "",
        f"## Where the pipeline's time goes (seconds per key, mean over {fast['keys']} systems, warm process)",
        "",
        "| stage (DataHandler.run_pipeline calls) | fast | exact |",
        "| --- | --- | --- |",
    ]
    for name in dict.fromkeys([*fast["stages"], *exact["stages"]]):
        lines.append(f"| {name} | {fast['stages'].get(name, 0):.3f} | {exact['stages'].get(name, 0):.3f} |")
    lines.append(f"| **total** | **{fast['seconds_per_key']:.3f}** | **{exact['seconds_per_key']:.3f}** |")
    lines += ["", "| layer | fast | exact |", "| --- | --- | --- |"]
    for name in fast["layers"]:
        lines.append(f"| {name} | {fast['layers'][name]:.3f} | {exact['layers'][name]:.3f} |")
    if "system_years" in fast:  # the floor: what the solver alone spends on a system-year
        per_year = [run["keys"] / run["system_years"] for run in (fast, exact)]
        lines.append(
            f"| per system-year: total; solver alone (the floor) | {fast['seconds_per_key'] * per_year[0]:.3f}; "
            f"{fast['layers']['solver (CLARABEL)'] * per_year[0]:.3f} | {exact['seconds_per_key'] * per_year[1]:.3f}; "
            f"{exact['layers']['solver (CLARABEL)'] * per_year[1]:.3f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--synthetic", type=int, default=20, help="synthetic systems next to the 2 real ones")
    parser.add_argument(
        "--synthetic-original", type=int, default=8, help="the same, for the comparisons with SDT's own runner"
    )
    parser.add_argument("--keys", type=int, default=100_000, help="keys of the scale benchmark")
    parser.add_argument(
        "--merge", action="store_true", help="keep latest.json's other figures, replacing only those run now"
    )
    parser.add_argument("--only", nargs="*", help="only these figures [default: every figure]")
    parser.add_argument("--tail-keys", type=int, default=40, help="keys of the long-tail and SIGTERM figures")
    parser.add_argument("--first-keys", type=int, default=5, help="systems of the first-key figure (>= 2)")
    parser.add_argument("--data-systems", type=int, default=4, help="systems of the data loading figures")
    parser.add_argument("--data-days", type=int, default=365, help="days of each of them")
    parser.add_argument("--data-keys", type=int, default=100_000, help="systems of the key listing figure")
    parser.add_argument("--loss-key", default="TAEFC1044741", help="the system of the loss analysis figure")
    parser.add_argument(
        "--stage-keys",
        nargs="*",
        default=["TAEFC1044741", "ZT162185000441C1203", "synthetic-000", "synthetic-001", "synthetic-002"],
        help="the systems of the stage table",
    )
    parser.add_argument(
        "--tiny", action="store_true", help="every figure in miniature, to check the suite runs (not a measurement)"
    )
    parser.add_argument("--results", type=Path, help="folder of latest.json and latest.md [default: bench/results]")
    args = parser.parse_args()
    if args.tiny:  # the miniature's sizes, unless given
        parser.set_defaults(**TINY)
        args = parser.parse_args()
        VARIANT_OPTIONS[:] = TINY_VARIANT_OPTIONS
    results_folder = args.results or RESULTS
    if args.tiny and args.results is None:
        raise SystemExit("--tiny: give --results FOLDER (its figures are no measurement for bench/results)")
    results: dict[str, Any] = {"machine": machine(), "repeats": args.repeats}
    if args.merge and (results_folder / "latest.json").exists():
        kept = json.loads((results_folder / "latest.json").read_text())
        for name, figures in kept.items():  # each kept figure keeps the repeats it was measured with
            if isinstance(figures, dict) and name != "machine":
                figures.setdefault("repeats", kept.get("repeats", 1))
        results = {k: v for k, v in kept.items() if k not in (args.only or ())} | results | {"merged": args.only}
    benches = {
        "discovery": lambda: bench_discovery(args.repeats),
        "start": lambda: bench_start(args.repeats),
        "scale": lambda: bench_scale(args.repeats, args.keys),
        "runner_pipeline": lambda: bench_runner(args.repeats, args.synthetic_original, loss=False),
        "order": lambda: bench_order(args.repeats, args.synthetic_original),
        "runner_loss": lambda: bench_runner(args.repeats, args.synthetic_original, loss=True),
        "fast_pipeline": lambda: with_fargate_cost(
            bench_fast_exact(args.repeats, ["runner-ours", "--synthetic", str(args.synthetic), "--no-report"])
        ),
        "fast_loss": lambda: bench_fast_exact(
            args.repeats, ["runner-ours", "--synthetic", "1", "--loss", "--key", args.loss_key, "--no-report"]
        ),
        "fast_proof": lambda: bench_fast_exact(
            1, ["runner-ours", "--synthetic", str(args.synthetic), "--proof", "--loss", "--no-report"]
        ),
        "stages": lambda: bench_stages(args.stage_keys),
        "data_loading": lambda: bench_data_loading(args.repeats, args.data_systems, args.data_days),
        "data_listing": lambda: bench_data_listing(args.data_keys),
        "tail": lambda: bench_tail(args.tail_keys),
        "first_key": lambda: bench_first_key(args.repeats, args.first_keys),
    }
    unknown = sorted(set(args.only or ()) - set(benches))
    if unknown:
        parser.error(f"--only: no figure {', '.join(unknown)}; the figures are {', '.join(benches)}")
    results["figures"] = args.only or list(benches)
    results_folder.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="sdt-bench-") as scratch:
        os.environ["DASK_TEMPORARY_DIRECTORY"] = scratch  # every cluster below spills here, removed after
        for name in results["figures"]:
            print(f"{name} ...", flush=True)
            results[name] = benches[name]()
            (results_folder / "latest.json").write_text(json.dumps(results, indent=2))  # what is done survives a stop
            (results_folder / "latest.md").write_text(table(results))
    print(table(results))


if __name__ == "__main__":
    main()
