"""Benchmarks of the supervision workbook at service scale.

    .venv/bin/python benchmarks/run.py                    # 10k, 100k and 1M sessions
    .venv/bin/python benchmarks/run.py --sizes 10k 5M     # any of 10k, 100k, 1M, 5M
    make bench                                            # the same as the first line

For each size a clinic is generated once with the demo generator (about 150 client episodes per
clinician, so a supervisee's caseload is ~150 clients) and cached under ``benchmarks/data/``
(git-ignored) as Parquet and CSV. Every measurement runs in a fresh Python process (so its peak
memory is its own), repeats the work ``--repeat`` times after one untimed warm-up where that is
meaningful, and reports the median; peak memory is the process's maximum resident set size.

Measured:

- ``floor_parquet`` / ``floor_csv``: pandas alone reading the same files (the floor);
- ``load_parquet`` / ``load_csv``: :func:`supervision.load_caseload` (read + validate + score);
- ``metrics``: every metric table for the whole service (:func:`supervision.metrics.tables.metric_tables`);
- ``open_dashboard``: building the supervision dashboard on the loaded caseload (service tables, agenda,
  first supervisee drawn): what a supervisor waits for after the data has loaded;
- ``switch``: changing supervisee in the supervision dashboard (server side: slicing, the agenda
  and the visible tab's figure), and ``switch_all_tabs`` with every tab drawn;
- ``report``: one supervisee's report with the service's tables already computed (batch mode).

The table printed at the end gives the ratios to the floor; the JSON written to
``benchmarks/results/`` holds every run.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
RESULTS = HERE / "results"
EPISODES = 150.0
# clinicians per size: ~150 episodes x ~6 scheduled sessions each (measured on the generator)
# "1.8M" is the 2,000-clinician service of the publish target (issue 24)
SIZES = {"10k": 11, "100k": 110, "1M": 1100, "1.8M": 2000, "5M": 5500}
TASKS = ["floor_parquet", "floor_csv", "load_parquet", "load_csv", "metrics", "open_dashboard", "switch", "switch_all_tabs",
         "report", "metrics_cli_parquet", "metrics_cli_csv", "publish", "report_all", "app_open_cold", "app_open_warm",
         "app_switch"]
#: tasks that run the ``supervision`` command in child processes (end to end: start-up, load, compute, write)
CLI_TASKS = {"metrics_cli_parquet", "metrics_cli_csv", "publish", "report_all"}


def ensure_clinic(size: str, formats=("parquet", "csv")) -> Path:
    root = DATA / size
    for fmt in formats:
        if not (root / fmt / f"sessions.{fmt}").exists():
            from supervision import synth

            t0 = time.perf_counter()
            synth.write_clinic(root / fmt, fmt=fmt, n_clinicians=SIZES[size],
                               params=synth.SynthParams(episodes_per_18_months=EPISODES))
            print(f"  generated {size} ({fmt}) in {time.perf_counter() - t0:.1f} s", flush=True)
    return root


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker(task: str, root: Path, repeat: int) -> dict:
    """Run one task in this (fresh) process and return its timings."""
    import pandas as pd

    import supervision

    times: list[float] = []
    extra: dict = {}
    if task in ("open_dashboard", "switch", "switch_all_tabs", "report"):
        import os

        os.environ["SUPERVISION_CACHE_DIR"] = "off"  # as measured before the table cache: computed every time

    def timed(fn, n=repeat, cleanup=None):
        fn()  # warm-up: imports and caches, as in a running notebook
        for _ in range(n):
            if cleanup:
                cleanup()  # untimed
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)

    tables = ("clients", "sessions", "clinicians", "scores")
    if task in CLI_TASKS:  # the command as a user runs it, each repeat in a fresh child process, cold table cache
        import os
        import shutil
        import tempfile

        for _ in range(repeat):
            scratch = Path(tempfile.mkdtemp(prefix="bench-"))
            out = scratch / "out"
            args = {"metrics_cli_parquet": ["metrics", root / "parquet", "--out", out, "--format", "parquet"],
                    "metrics_cli_csv": ["metrics", root / "parquet", "--out", out, "--format", "csv"],
                    "publish": ["publish", root / "parquet", "--out", out],
                    "report_all": ["report", root / "parquet", "--clinician", "all", "--out", out]}[task]
            env = {**os.environ, "SUPERVISION_CACHE_DIR": str(scratch / "cache")}
            t0 = time.perf_counter()
            r = subprocess.run([sys.executable, "-m", "supervision.cli", *map(str, args)], capture_output=True, text=True,
                               env=env)
            times.append(time.perf_counter() - t0)
            if r.returncode != 0:
                raise RuntimeError(r.stderr[-800:])
            extra = {"files": sum(1 for _ in out.rglob("*") if _.is_file()), "last_line": r.stdout.strip().splitlines()[-1][:200]}
            shutil.rmtree(scratch, ignore_errors=True)
        # peak of the children (the command's processes; publish/report workers are children of the command)
        child_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        return {"task": task, "times": times, "median_s": statistics.median(times), "peak_mb": child_peak, **extra}
    if task == "floor_parquet":
        timed(lambda: [pd.read_parquet(root / "parquet" / f"{t}.parquet") for t in tables])
    elif task == "floor_csv":
        timed(lambda: [pd.read_csv(root / "csv" / f"{t}.csv") for t in tables])
    elif task in ("load_parquet", "load_csv"):
        fmt = task.split("_")[1]
        timed(lambda: supervision.load_caseload(root / fmt))
        cl = supervision.load_caseload(root / fmt)
        extra = {"sessions": len(cl.sessions), "clients": len(cl.clients), "problems": len(cl.report)}
    else:
        cl = supervision.load_caseload(root / "parquet")
        from supervision.metrics.tables import metric_tables

        if task == "metrics":
            timed(lambda: metric_tables(cl))
        elif task == "open_dashboard":
            from supervision.widgets.supervision import SupervisionDashboard

            import gc

            import ipywidgets

            def close_all():  # one dashboard at a time (ipywidgets keeps every open widget alive)
                ipywidgets.Widget.close_all()
                gc.collect()

            timed(lambda: SupervisionDashboard(cl, notes_path=root / "bench-notes.sqlite"), cleanup=close_all)
        elif task in ("switch", "switch_all_tabs"):
            from supervision.widgets.supervision import SupervisionDashboard

            dash = SupervisionDashboard(cl, notes_path=root / "bench-notes.sqlite")
            ids = [v for _, v in dash.supervisee.options]
            caseload_sizes = cl.clients.groupby("clinician_id").size()
            picks = ids[1:repeat + 1] if len(ids) > repeat else ids[1:]
            dash.supervisee.value = ids[0]  # warm-up

            def switch_to(cid):
                dash.supervisee.value = cid
                if task == "switch_all_tabs":
                    for i in range(4):  # the notes tab reads the notes database: not a chart
                        dash.body.selected_index = i
                    dash.body.selected_index = 0

            for cid in picks:
                t0 = time.perf_counter()
                switch_to(cid)
                times.append(time.perf_counter() - t0)
            extra = {"median_caseload_clients": float(caseload_sizes.loc[picks].median()), "errors": dash.error.value[:300]}
        elif task in ("app_open_cold", "app_open_warm"):
            # the app's supervision page (service tables, agenda, first supervisee drawn) on a loaded caseload,
            # with the stored service tables absent (cold: computed and stored) or present (warm: read)
            import gc
            import os
            import shutil
            import tempfile

            import ipywidgets

            cache = Path(tempfile.mkdtemp(prefix="bench-cache-"))
            os.environ["SUPERVISION_CACHE_DIR"] = str(cache)
            from supervision import table_cache
            from supervision.widgets.supervision import SupervisionDashboard

            first = sorted(cl.clinicians["clinician_id"].astype(str))[0]

            def reset():
                ipywidgets.Widget.close_all()
                gc.collect()
                table_cache.wait()  # the previous page's entry is stored (or is being removed)
                if task == "app_open_cold":
                    shutil.rmtree(cache, ignore_errors=True)

            timed(lambda: SupervisionDashboard(cl, supervisee=first, notes_path=root / "bench-notes.sqlite"), cleanup=reset)
            table_cache.wait()
            extra = {"cache_event": table_cache.last_event}
            shutil.rmtree(cache, ignore_errors=True)
        elif task == "app_switch":
            # the workbook app (remembered data = this export), supervision page open, supervisee changed
            import os
            import shutil
            import tempfile

            from supervision.remembered import Remembered

            scratch = Path(tempfile.mkdtemp(prefix="bench-app-"))
            os.environ["SUPERVISION_CACHE_DIR"] = str(scratch / "cache")
            state = scratch / "state.json"
            Remembered(data=str(root / "parquet")).write(state)
            from supervision.widgets.app import WorkbookApp

            app = WorkbookApp(state_file=state)
            ids = sorted(cl.clinicians["clinician_id"].astype(str))
            picks = ids[1:repeat + 1] if len(ids) > repeat else ids[1:]
            for cid in picks:
                t0 = time.perf_counter()
                app.set_supervisee(cid)
                times.append(time.perf_counter() - t0)
            dash = app.pages["supervision"]
            extra = {"shown": dash.supervisee.value, "errors": (app.error.value + dash.error.value)[:300]}
            shutil.rmtree(scratch, ignore_errors=True)
        elif task == "report":
            from supervision.report import build_report

            tables_ = metric_tables(cl)
            cid = cl.clinicians["clinician_id"].iloc[0]
            timed(lambda: build_report(cl, cid, tables=tables_, include_notes=False))
    return {"task": task, "times": times, "median_s": statistics.median(times) if times else None,
            "peak_mb": _peak_mb(), **extra}


def run_task(task: str, size: str, root: Path, repeat: int) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", task, "--root", str(root), "--repeat", str(repeat)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        return {"task": task, "size": size, "error": r.stderr.strip()[-800:]}
    out = json.loads(r.stdout.strip().splitlines()[-1])
    out["size"] = size
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", nargs="+", default=["10k", "100k", "1M"], choices=list(SIZES))
    ap.add_argument("--tasks", nargs="+", default=TASKS, choices=TASKS)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--worker")
    ap.add_argument("--root")
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, Path(args.root), args.repeat)))
        return 0
    results = []
    for size in args.sizes:
        print(f"{size}:", flush=True)
        root = ensure_clinic(size, ("parquet", "csv") if any(t.endswith("_csv") and t.startswith(("floor", "load"))
                                                               for t in args.tasks) else ("parquet",))
        for task in args.tasks:
            res = run_task(task, size, root, args.repeat if task not in ("switch", "switch_all_tabs", "app_switch")
                           else max(args.repeat, 5))
            results.append(res)
            print(f"  {task:16s} " + (f"median {res['median_s']:.3f} s, peak {res['peak_mb']:.0f} MB"
                                       if "error" not in res else f"FAILED: {res['error'][-300:]}"), flush=True)
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    meta = {"when": stamp, "python": platform.python_version(), "machine": platform.machine(),
            "cpus": __import__("os").cpu_count()}
    (RESULTS / f"bench-{stamp}.json").write_text(json.dumps({"meta": meta, "results": results}, indent=1))
    print("\n" + table(results))
    print(f"\nJSON: {RESULTS / f'bench-{stamp}.json'}")
    return 0


def table(results: list[dict]) -> str:
    by = {(r["size"], r["task"]): r for r in results}
    sizes = list(dict.fromkeys(r["size"] for r in results))
    lines = ["| task | " + " | ".join(sizes) + " |", "|---|" + "---|" * len(sizes)]
    for task in TASKS:
        cells = []
        for size in sizes:
            r = by.get((size, task))
            if not r:
                cells.append("")
                continue
            if "error" in r:
                cells.append("failed")
                continue
            cell = f"{r['median_s']:.3f} s, {r['peak_mb']:.0f} MB"
            floor = by.get((size, "floor_" + task.split("_")[1])) if task.startswith("load_") else None
            if floor and "error" not in floor and floor["median_s"]:
                cell += f" ({r['median_s'] / floor['median_s']:.1f}x floor)"
            cells.append(cell)
        if any(cells):
            lines.append(f"| {task} | " + " | ".join(cells) + " |")
    # linearity: time ratio between consecutive sizes against the ratio of their sessions
    pairs = list(zip(sizes, sizes[1:]))
    if pairs:
        lines += ["", "| growth (time ratio / sessions ratio) | " + " | ".join(f"{a} -> {b}" for a, b in pairs) + " |",
                  "|---|" + "---|" * len(pairs)]
        for task in TASKS:
            cells = []
            for a, b in pairs:
                ra, rb = by.get((a, task)), by.get((b, task))
                sa, sb = by.get((a, "load_parquet"), {}).get("sessions"), by.get((b, "load_parquet"), {}).get("sessions")
                if not ra or not rb or "error" in ra or "error" in rb or not ra["median_s"] or not sa or not sb:
                    cells.append("")
                    continue
                cells.append(f"{rb['median_s'] / ra['median_s']:.1f}x / {sb / sa:.1f}x")
            if any(cells):
                lines.append(f"| {task} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
