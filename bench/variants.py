"""One measured variant per process: `python bench/variants.py NAME [options]` prints JSON.

Each variant is the thing measured and nothing else; `bench/run.py` starts them side by
side, samples their memory and computes the ratios.
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd
from tiny import (
    TailData,
    TinyData,
    long_tail,
    trivial,
)  # importable by the workers too (PYTHONPATH), as a real analysis is

from sdt_core import ClientPlug, DataPlug

CLUSTER = {"workers": 2, "threads": 1, "memory": 9.0, "dashboard_address": "127.0.0.1:0"}  # exact SDT: ~6 GB


def systems(args: argparse.Namespace, synthetic: int | None = None, proof: bool = False) -> DataPlug:
    """SDT's two real sample systems plus `synthetic` one-year systems of the generator; with
    `proof`, synthetic systems of the lengths of the fast path's proof set instead. The data
    plug's options in `--sample` (e.g. real=false days=30, for a miniature run) come last."""
    from sdt_core.acceleration.equivalence import PROOF_LENGTHS
    from sdt_core.dataplugs.sample import SampleData

    count = args.synthetic if synthetic is None else synthetic
    options: dict[str, Any] = {"systems": count, "days": 365, "lengths": list(PROOF_LENGTHS) if proof else []}
    return SampleData(**options | pairs(args.sample))


def pairs(items: list[str]) -> dict[str, Any]:
    """KEY=VALUE options, each value read as JSON (false, 2, [20]) or else as text."""
    values = {}
    for name, _, text in (item.partition("=") for item in items):
        try:
            values[name] = json.loads(text)
        except ValueError:
            values[name] = text
    return values


def cluster(args: argparse.Namespace) -> dict[str, Any]:
    return CLUSTER | {"workers": args.workers}


class Connect(ClientPlug):
    """A ClientPlug for a running scheduler, as SDT's README lets users write their own."""

    def __init__(self, address: str):
        super().__init__()
        self.address = address

    def init_client(self) -> Any:
        from distributed import Client

        self.client = Client(self.address)
        return self.client


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def runner_ours(args: argparse.Namespace) -> dict[str, Any]:
    from sdt_core import run

    with tempfile.TemporaryDirectory() as out:
        summary = run(
            systems(args, proof=args.proof),
            settings=cluster(args),
            out=out,
            loss_analysis=args.loss,
            report=not args.no_report,
            biggest_first=not args.given_order,
            exact_sdt=args.exact,
            keys=args.key or None,
            loss_options=pairs(args.loss_option) or None,
        )
        rows = [json.loads(line) for line in (Path(out) / "results.jsonl").read_text().splitlines()]
    return {"seconds": summary.seconds, "ok": summary.ok, "failed": summary.failed, "rows": rows}


def runner_original(args: argparse.Namespace) -> dict[str, Any]:
    """SDT's own Runner (sdt_dask, solar-data-tools 2.1.5) fed through a correct DataPlug.

    Its LocalFiles plug cannot read the sample files, so the keys come from the same data
    plug as ours. It always runs the loss analysis of systems over 365 days; for the
    pipeline-only figure, that step is made to fail at once on the workers.
    """
    from distributed import Client, LocalCluster
    from sdt_dask.dask_tool.runner import Runner

    data = systems(args)
    keys = [(key,) for key in args.key] or list(data.keys())
    start = time.monotonic()
    cluster = LocalCluster(
        n_workers=args.workers, threads_per_worker=1, memory_limit="8GiB", dashboard_address="127.0.0.1:0"
    )
    client = Client(cluster)
    if not args.loss:
        client.run(_no_loss_analysis)
    with tempfile.TemporaryDirectory() as out:
        runner = Runner(client, output_path=out)
        runner.set_up(keys, data)
        runner.get_result()  # computes, writes its summary and report, shuts the cluster down
        table = pd.read_csv(next(Path(out).glob("*summary_report.csv")))
    cluster.close()
    ok = int((table["run_pipeline error"] == "No error").sum())
    return {"seconds": round(time.monotonic() - start, 1), "ok": ok, "failed": len(table) - ok}


def _no_loss_analysis() -> None:
    import solardatatools

    def skipped(self: Any, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("loss analysis skipped for the pipeline-only benchmark")

    solardatatools.DataHandler.run_loss_factor_analysis = skipped


def first_key(args: argparse.Namespace) -> dict[str, Any]:
    """One worker of 1 thread runs the systems in turn: how much longer its first key took than
    the median of the others (warm keys). With `--cold`, workers are not warmed up before their
    first key (dask config `sdt.warm-workers` false)."""
    import statistics

    import dask.config

    from sdt_core import run

    with tempfile.TemporaryDirectory() as out, dask.config.set({"sdt.warm-workers": not args.cold}):
        summary = run(
            systems(args),
            settings=cluster(args) | {"workers": 1},
            out=out,
            report=False,
            biggest_first=False,
            exact_sdt=args.exact,
            progress_interval=3600,
        )
        rows = [json.loads(line) for line in (Path(out) / "results.jsonl").read_text().splitlines()]
    first, *warm = sorted(rows, key=lambda row: row["start_time"])
    warm_s = statistics.median(row["total_s"] for row in warm)
    return {
        "seconds": summary.seconds,
        "ok": summary.ok,
        "keys": len(rows),
        "first_key_s": first["total_s"],
        "warm_key_s": warm_s,
        "overhead_s": first["total_s"] - warm_s,
        "rows": rows,
    }


def scale_ours(args: argparse.Namespace) -> dict[str, Any]:
    from sdt_core import run

    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        summary = run(
            TinyData(count=args.keys),
            plug=Connect(args.address),
            out=out,
            analysis=trivial,
            report=False,
            biggest_first=False,
            progress_interval=3600,
        )
        seconds = time.perf_counter() - start
    return {"seconds": seconds, "keys_per_s": args.keys / seconds, "ok": summary.ok, "peak_rss_mb": peak_rss_mb()}


def scale_raw(args: argparse.Namespace) -> dict[str, Any]:
    from distributed import Client

    from sdt_core.job.task import process_key

    data = TinyData(count=args.keys)
    with Client(args.address) as client:
        start = time.perf_counter()
        futures = client.map(process_key, data.keys(), data=data, analysis=trivial, pure=False)
        rows = client.gather(futures)
        seconds = time.perf_counter() - start
        del futures
    ok = sum(row["status"] == "ok" for row in rows)
    return {"seconds": seconds, "keys_per_s": args.keys / seconds, "ok": ok, "peak_rss_mb": peak_rss_mb()}


def start_ours(args: argparse.Namespace) -> dict[str, Any]:
    """The local plug's start to a first task; with `--cold`, its workers not warmed up."""
    import distributed  # noqa: F401  (imports are not what is measured)

    from sdt_core import get_plug

    start = time.perf_counter()
    plug = get_plug(
        "local",
        workers=2,
        threads=1,
        memory=1,
        dashboard_address="127.0.0.1:0",
        config_overrides={"sdt.warm-workers": not args.cold},
    )
    client = plug.init_client()
    client.submit(sum, [1, 2]).result()
    seconds = time.perf_counter() - start
    plug.close()
    return {"seconds": seconds}


def start_raw(args: argparse.Namespace) -> dict[str, Any]:
    from distributed import Client, LocalCluster

    start = time.perf_counter()
    cluster = LocalCluster(
        n_workers=2, threads_per_worker=1, memory_limit="1GiB", dashboard_address="127.0.0.1:0", host="127.0.0.1"
    )
    client = Client(cluster)
    client.submit(sum, [1, 2]).result()
    seconds = time.perf_counter() - start
    client.close()
    cluster.close()
    return {"seconds": seconds}


def stages(args: argparse.Namespace) -> dict[str, Any]:
    from stages import profile_pipeline

    return profile_pipeline(systems(args, 20), args.key, fast=not args.exact)


def loading(args: argparse.Namespace) -> dict[str, Any]:
    from loading import measure_loads

    return measure_loads(args.systems, args.days, args.repeats)


def listing(args: argparse.Namespace) -> dict[str, Any]:
    from loading import measure_listing

    return measure_listing(args.keys)


def _tail_run(args: argparse.Namespace, adapt: str | None, stop_every: float | None = None) -> dict[str, Any]:
    """A run with a long tail on the local plug (2 workers of 1 thread at most): wall time, and
    worker-seconds held (run.json's workers over time) against busy (the keys' own seconds);
    with `stop_every`, SIGTERM to a worker process every that many seconds."""
    import os
    import signal
    import threading

    import psutil

    from sdt_core import run

    settings = {"workers": 1 if adapt else 2, "threads": 1, "memory": 1, "dashboard_address": "127.0.0.1:0"}
    done, stops = threading.Event(), []

    def stop_workers(out: Path) -> None:
        """Once the first key is done (the cluster is up: a worker still starting is not retired but lost), stop one."""
        rows = out / "results.jsonl"  # opened before the start: it holds a row once a key is done
        while not done.wait(0.1) and not (rows.exists() and rows.stat().st_size):
            pass
        while not done.wait(stop_every):
            servers = [p for p in psutil.Process().children() if "forkserver" in " ".join(p.cmdline())]
            workers = [w for server in servers for w in server.children()]
            if workers:
                os.kill(workers[-1].pid, signal.SIGTERM)
                stops.append(time.perf_counter())

    with tempfile.TemporaryDirectory() as out:
        stopper = threading.Thread(target=stop_workers, args=(Path(out),)) if stop_every else None
        start = time.perf_counter()
        if stopper:
            stopper.start()
        try:
            summary = run(
                TailData(count=args.keys),
                plug="local",
                settings=settings,
                out=out,
                analysis=long_tail,
                report=False,
                biggest_first=False,
                progress_interval=3600,
                adapt=adapt,
            )
        finally:
            done.set()
            if stopper:
                stopper.join()
        seconds = time.perf_counter() - start
        record = json.loads((Path(out) / "run.json").read_text())
        rows = [json.loads(line) for line in (Path(out) / "results.jsonl").read_text().splitlines()]
    points = record["workers"]  # from the cluster ready to the run's end (its last point)
    held = sum((end - t) * n for (t, n), (end, _) in itertools.pairwise(points))
    busy = sum(row.get("total_s") or 0 for row in rows)
    keys = [tuple(row["key"]) for row in rows]
    return {
        "seconds": seconds,
        "held_worker_s": held,
        "busy_worker_s": busy,
        "held_per_busy": held / busy,
        "ok": summary.ok,
        "rows": len(keys),
        "unique_keys": len(set(keys)),
        "sigterms": len(stops),
        "workers": points,
    }


def tail_fixed(args: argparse.Namespace) -> dict[str, Any]:
    return _tail_run(args, None)


def tail_adapt(args: argparse.Namespace) -> dict[str, Any]:
    return _tail_run(args, "1:2")


def tail_sigterm(args: argparse.Namespace) -> dict[str, Any]:
    return _tail_run(args, None, stop_every=args.stop_every)


VARIANTS = {
    f.__name__.replace("_", "-"): f
    for f in (
        runner_ours,
        runner_original,
        first_key,
        scale_ours,
        scale_raw,
        start_ours,
        start_raw,
        stages,
        loading,
        listing,
        tail_fixed,
        tail_adapt,
        tail_sigterm,
    )
}

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("variant", choices=VARIANTS)
    parser.add_argument("--synthetic", type=int, default=8)
    parser.add_argument("--loss", action="store_true")
    parser.add_argument("--given-order", action="store_true")
    parser.add_argument("--address")
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--exact", action="store_true", help="SDT exactly as released (no fast path)")
    parser.add_argument("--cold", action="store_true", help="workers not warmed up (sdt.warm-workers false)")
    parser.add_argument("--proof", action="store_true", help="synthetic systems of the proof set's lengths")
    parser.add_argument("--no-report", action="store_true")
    parser.add_argument("--key", action="append", default=[], help="only these keys")
    parser.add_argument("--systems", type=int, default=4, help="systems of the data loading variant")
    parser.add_argument("--days", type=int, default=365, help="days of each of them")
    parser.add_argument("--repeats", type=int, default=3, help="rounds of the sources, in alternating order")
    parser.add_argument("--stop-every", type=float, default=4.0, help="seconds between SIGTERMs (tail-sigterm)")
    parser.add_argument("--sample", action="append", default=[], metavar="KEY=VALUE", help="option of the sample set")
    parser.add_argument("--workers", type=int, default=2, help="workers of the runners' clusters")
    parser.add_argument(
        "--loss-option", action="append", default=[], metavar="KEY=VALUE", help="of SDT's loss analysis"
    )
    arguments = parser.parse_args()
    result = VARIANTS[arguments.variant](arguments)
    print("BENCH-RESULT " + json.dumps(result), flush=True)
    sys.exit(0)
