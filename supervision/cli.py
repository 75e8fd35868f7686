"""The ``supervision`` command.

    supervision validate PATH [--report FILE.csv] [--settings FILE.toml]
    supervision metrics PATH --out DIR [--format csv|parquet] [--clinician ID] [--area AREA ...] [--settings FILE.toml]
    supervision report PATH --clinician ID|all --out FILE.html|DIR [--period all|3m|6m|12m] [--pdf]
    supervision import fhir PATH --out DIR [--default-clinician ID]
    supervision import mapped PATH --mapping FILE.toml --out DIR
    supervision pseudonymise IN OUT --key-file K
    supervision publish EXPORT --out DIR [--policy nhs|cms] [--settings FILE.toml]
    supervision demo [--out DIR] [--seed N] [--clinicians N] [--months N] [--episodes N] [--format csv|parquet] [--messy]

Exit codes of ``validate``: 0 clean, 1 loaded with problems, 2 unusable (or a usage error).
Errors are printed as plain sentences, never as a Python traceback.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

SHOWN_ROWS = 200


def _validate(args) -> int:
    import pandas as pd

    from supervision.io import load_caseload

    settings = _settings(args)
    if isinstance(settings, int):
        return settings
    t0 = time.perf_counter()
    cl = load_caseload(args.path, settings=settings)
    took = time.perf_counter() - t0
    status = {"clean": "no problems found", "problems": "loaded, with problems",
              "unusable": "NOT USABLE: nothing was loaded"}[cl.status]
    print(f"Validated {args.path} ({cl.format}) in {took:.1f} s: {status}.")
    print()
    if len(cl.counts):
        print(cl.counts.to_string(index=False))
        print()
    if cl.usable:
        s = cl.summary()
        print(f"{s['clinicians']} clinicians, {s['clients']} clients, {s['sessions']} sessions "
              f"({s['attended']} attended), {s['first_date']:%Y-%m-%d} to {s['last_date']:%Y-%m-%d}."
              if s["sessions"] else f"{s['clinicians']} clinicians, {s['clients']} clients, no sessions.")
        print()
    if not cl.report.empty:
        print(f"{cl.n_errors} error(s) (rows quarantined), {cl.n_warnings} warning(s) (rows loaded). Problems by kind:")
        print(cl.problems_by_kind().to_string(index=False))
        print()
        shown = cl.report.head(SHOWN_ROWS)
        with pd.option_context("display.max_colwidth", 90, "display.width", 250):
            print(shown[["table", "row", "column", "value", "problem", "fix", "severity"]].to_string(index=False))
        if len(cl.report) > SHOWN_ROWS:
            print(f"... and {len(cl.report) - SHOWN_ROWS} more: use --report FILE.csv to see them all.")
    if args.report:
        from supervision.io.export import write_safe_csv

        write_safe_csv(cl.report, args.report)
        print(f"\nThe full report ({len(cl.report)} rows) was written to {args.report}.")
    return {"clean": 0, "problems": 1, "unusable": 2}[cl.status]


def _settings(args):
    """The settings named on the command line, or an exit code after a plain message."""
    return _settings_or_code(args.settings)


def _settings_or_code(given):
    """``load_settings(given)``, or the exit code 2 after a plain message naming the problem."""
    from supervision.config import SettingsError, load_settings

    try:
        return load_settings(given)
    except SettingsError as exc:
        print(f"Settings problem: {exc}", file=sys.stderr)
        return 2


def _usable_caseload(args):
    """The caseload at ``args.path`` when usable, else an exit code after a plain message."""
    from supervision.io import load_caseload

    settings = _settings(args)
    if isinstance(settings, int):
        return settings
    cl = load_caseload(args.path, settings=settings)
    if not cl.usable:
        print(f"{args.path} cannot be used: run `supervision validate {args.path}` to see why.", file=sys.stderr)
        return 2
    return cl


AREAS = ("alliance", "engagement", "outcome", "focus", "adaptation")


def _metrics(args) -> int:
    from supervision.io.export import write_safe_csv
    from supervision.metrics.tables import metric_tables

    cl = _usable_caseload(args)
    if isinstance(cl, int):
        return cl
    if args.clinician is not None and args.clinician not in set(cl.clinicians["clinician_id"].astype(str)):
        print(f"Unknown clinician {args.clinician!r}: it is not in the export's clinicians. Run `supervision validate` "
              "to see the clinicians it holds.", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    print("Computing the metric tables...", flush=True)
    tables = metric_tables(cl)
    print(f"  computed in {time.perf_counter() - t0:.1f} s", flush=True)
    if args.area:
        tables = {n: f for n, f in tables.items() if n.split("_", 1)[0] in args.area}
    written = []
    for i, (name, frame) in enumerate(tables.items(), start=1):
        if args.clinician is not None:  # one clinician's rows, with the service's where a table has them
            if "clinician_id" in frame.columns:
                frame = frame[frame["clinician_id"].astype(str) == args.clinician]
            elif "scope" in frame.columns:
                frame = frame[frame["scope"].astype(str).isin([args.clinician, "service"])]
        t1 = time.perf_counter()
        if args.format == "parquet":
            path = out / f"{name}.parquet"
            frame.reset_index(drop=True).to_parquet(path, index=False)  # typed, compressed; no formula risk
        else:
            path = write_safe_csv(frame, out / f"{name}.csv")
        written.append((path.name, len(frame)))
        print(f"  [{i}/{len(tables)}] {path.name}: {len(frame)} rows in {time.perf_counter() - t1:.1f} s", flush=True)
    print(f"Wrote {len(written)} tables to {out} in {time.perf_counter() - t0:.1f} s: "
          + ", ".join(f"{n} ({k} rows)" for n, k in written))
    if cl.n_errors:
        print(f"Note: {cl.n_errors} rows were quarantined by validation and are not in these tables.")
    return 0


def _report(args) -> int:
    from supervision.report import ReportError, write_reports

    if args.notes is not None and not Path(args.notes).is_file():  # a mistyped path: not a report without notes
        print(f"Report problem: the notes database '{args.notes}' does not exist. Check the path given to --notes "
              "(or leave --notes out to use the settings' notes path).", file=sys.stderr)
        return 2
    cl = _usable_caseload(args)
    if isinstance(cl, int):
        return cl
    ids = sorted(cl.clinicians["clinician_id"]) if args.clinician == "all" else [args.clinician]

    def progress(i, n, cid, took):
        print(f"[{i}/{n}] report for {cid} written in {took:.1f} s", flush=True)

    try:
        paths = write_reports(cl, ids, Path(args.out), period=args.period, notes_path=args.notes, pdf=args.pdf,
                              progress=progress, policy=args.policy, workers=args.workers)
    except ReportError as exc:
        print(f"Report problem: {exc}", file=sys.stderr)
        return 2
    size = sum(p.stat().st_size for p in paths) / 1e6
    print(f"Wrote {len(paths)} file(s), {size:.1f} MB: {paths[0]}" + (" ..." if len(paths) > 1 else ""))
    return 0


def _import(args) -> int:
    if args.kind == "fhir":
        return import_fhir_command(args.path, args.out, settings=args.settings, default_clinician=args.default_clinician)
    if not args.mapping:
        print("`supervision import mapped` needs --mapping FILE.toml (see data/mappings/ for examples).", file=sys.stderr)
        return 2
    return import_mapped_command(args.path, args.mapping, args.out, settings=args.settings)


def _pseudonymise(args) -> int:
    return pseudonymise_command(args.input, args.output, args.key_file, settings=args.settings)


def _publish(args) -> int:
    from supervision.config import SettingsError
    from supervision.publish import PublishError, publish

    def progress(i, n, cid, took):
        if n <= 20 or i == n or i % max(1, n // 20) == 0:
            print(f"[{i}/{n}] published {cid} ({took:.2f} s)", flush=True)

    try:
        summary = publish(args.path, args.out, settings=args.settings, policy=args.policy, progress=progress,
                          workers=args.workers)
    except (PublishError, SettingsError) as exc:
        print(f"Publish problem: {exc}", file=sys.stderr)
        return 2
    print(summary)
    print(f"Each folder holds one clinician's own clients and the service benchmarks; {args.out}/publish_index.csv "
          "(for the analyst only) maps clinicians to folders and supervisors.")
    return 0


def _demo(args) -> int:
    from supervision import synth

    t0 = time.perf_counter()
    params = synth.SynthParams(episodes_per_18_months=args.episodes) if args.episodes else None
    paths = synth.write_clinic(args.out, fmt=args.format, seed=args.seed, n_clinicians=args.clinicians,
                               months=args.months, messy=args.messy, params=params)
    took = time.perf_counter() - t0
    size = sum(Path(p).stat().st_size for p in paths) / 1e6
    print(f"Wrote the demo clinic to {args.out} ({len(paths)} files, {size:.1f} MB) in {took:.1f} s.")
    return 0


# --------------------------------------------------------------------------------------------
# `supervision import fhir|mapped` and `supervision pseudonymise`: summaries and exit codes (the
# work itself is in supervision.io.fhir, supervision.io.mapping and supervision.privacy)
# --------------------------------------------------------------------------------------------

def print_import_summary(cl, what: str, took: float, out: str | Path, file=None, shown: int = 50) -> int:
    """Print an import's summary and problems; return the exit code (0 clean, 1 problems, 2 unusable)."""
    import pandas as pd

    file = file or sys.stdout
    n_sessions = len(cl.sessions) if cl.usable else 0
    status = cl.status if n_sessions else "unusable"
    headline = {"clean": "no problems found", "problems": "imported, with problems",
                "unusable": "NOTHING could be imported"}[status]
    print(f"Imported {what} in {took:.1f} s: {headline}.", file=file)
    print(f"Wrote the contract tables and import_report.csv to {out}.", file=file)
    print(file=file)
    if len(cl.counts):
        print(cl.counts.to_string(index=False), file=file)
        print(file=file)
    if n_sessions:
        s = cl.summary()
        print(f"{s['clinicians']} clinicians, {s['clients']} clients, {s['sessions']} sessions "
              f"({s['attended']} attended), {s['first_date']:%Y-%m-%d} to {s['last_date']:%Y-%m-%d}.", file=file)
        print(file=file)
    if not cl.report.empty:
        print(f"{cl.n_errors} error(s), {cl.n_warnings} warning(s). Problems by kind:", file=file)
        print(cl.problems_by_kind().to_string(index=False), file=file)
        print(file=file)
        with pd.option_context("display.max_colwidth", 100, "display.width", 250):
            print(cl.report.head(shown)[["table", "row", "column", "value", "problem", "severity"]].to_string(index=False),
                  file=file)
        if len(cl.report) > shown:
            print(f"... and {len(cl.report) - shown} more in {Path(out) / 'import_report.csv'}.", file=file)
    return {"clean": 0, "problems": 1, "unusable": 2}[status]


def import_fhir_command(path, out, settings=None, default_clinician: str | None = None) -> int:
    """``supervision import fhir PATH --out DIR``: import, print a summary, return the exit code.

    0 = imported with no problems, 1 = imported with problems (see ``DIR/import_report.csv``),
    2 = nothing could be imported (or a settings problem). Never raises for bad input.
    """
    from supervision.io.fhir import import_fhir_counted

    settings = _settings_or_code(settings)
    if isinstance(settings, int):
        return settings
    t0 = time.perf_counter()
    try:
        cl, counts = import_fhir_counted(path, out, settings, default_clinician=default_clinician)
    except OSError as exc:
        print(f"Cannot write to {out}: {exc}", file=sys.stderr)
        return 2
    what = (f"{path} ({counts.get('imported', 0):,} of {counts.get('responses', 0):,} QuestionnaireResponses used, "
            f"{counts.get('resources', 0):,} resources read)")
    return print_import_summary(cl, what, time.perf_counter() - t0, out)


def import_mapped_command(path, mapping, out, settings=None) -> int:
    """``supervision import mapped PATH --mapping FILE --out DIR``: print a summary, return the exit code.

    0 = imported with no problems, 1 = imported with problems (``DIR/import_report.csv``),
    2 = nothing could be imported, or the mapping (or settings) file cannot be used: the message
    names the key to fix. Never shows a traceback for bad input.
    """
    from supervision.io.mapping import MappingError, import_mapped

    settings = _settings_or_code(settings)
    if isinstance(settings, int):
        return settings
    t0 = time.perf_counter()
    try:
        cl = import_mapped(path, mapping, out, settings)
    except MappingError as exc:
        print(f"Mapping file problem: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"Cannot write to {out}: {exc}", file=sys.stderr)
        return 2
    return print_import_summary(cl, f"{path} with the mapping {Path(mapping).name}", time.perf_counter() - t0, out)


def pseudonymise_command(in_path, out_path, key_file, settings=None) -> int:
    """``supervision pseudonymise IN OUT --key-file K``: print a summary; 0 = written, 2 = refused."""
    from supervision.config import SettingsError
    from supervision.privacy.pseudonymise import PseudonymiseError, pseudonymise

    try:
        summary = pseudonymise(in_path, out_path, key_file, settings, progress=lambda m: print(m, flush=True))
    except (PseudonymiseError, SettingsError) as exc:
        print(f"Not pseudonymised: {exc}", file=sys.stderr)
        return 2
    tables = ", ".join(f"{n} ({r} rows)" for n, r in summary.rows.items())
    dropped = sorted({c for cols in summary.dropped_identifiers.values() for c in cols})
    print(f"Wrote a pseudonymised export to {summary.output}: {tables}.")
    print(f"Ids hashed with key {summary.key_fingerprint} (fingerprint; the key is not in the output): "
          + ", ".join(f"{n} {d}" for d, n in ((d, summary.distinct_ids.get(d, 0)) for d in summary.id_formats)) + ".")
    if dropped:
        print(f"Dropped identifier columns: {', '.join(dropped)}.")
    unknown = sorted({c for cols in summary.dropped_unknown.values() for c in cols})
    if unknown:
        print(f"Dropped columns outside the data contract: {', '.join(unknown)}.")
    for note in summary.notes:
        print(f"Note: {note}")
    print(f"Details: {summary.report_path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="supervision", description="Clinical supervision workbook.")
    sub = p.add_subparsers(dest="command", required=True)
    v = sub.add_parser("validate", help="check an export against the data contract and report every problem")
    v.add_argument("path", help="folder of CSV/Parquet files, or an .xlsx workbook")
    v.add_argument("--report", help="write the full report to this CSV file")
    v.add_argument("--settings", help="settings file (TOML)")
    v.set_defaults(func=_validate)
    m = sub.add_parser("metrics", help="write every metric table (per session, client, clinician) as CSV or Parquet")
    m.add_argument("path", help="folder of CSV/Parquet files, or an .xlsx workbook")
    m.add_argument("--out", required=True, help="output folder")
    m.add_argument("--format", choices=("csv", "parquet"), default="csv",
                   help="csv (opens in a spreadsheet; formulas neutralised) or parquet (typed, much faster for a service)")
    m.add_argument("--clinician", help="only this clinician's rows (and the service's rows of per-clinician tables)")
    m.add_argument("--area", nargs="+", choices=AREAS, help="only the tables of these areas")
    m.add_argument("--settings", help="settings file (TOML)")
    m.set_defaults(func=_metrics)
    r = sub.add_parser("report", help="write the supervision report (self-contained HTML, optional PDF)")
    r.add_argument("path", help="folder of CSV/Parquet files, or an .xlsx workbook")
    r.add_argument("--clinician", required=True, help="the supervisee's id, or 'all' for one report each")
    r.add_argument("--period", choices=["all", "3m", "6m", "12m"], default="all")
    r.add_argument("--out", required=True, help="FILE.html (one supervisee) or a folder (--clinician all)")
    r.add_argument("--pdf", action="store_true", help="also print a PDF with headless Chromium")
    r.add_argument("--notes", help="notes database (default from the settings)")
    r.add_argument("--policy", choices=["nhs", "cms", "none"],
                   help="small-numbers policy for group counts (default: the settings'; 'none' only for the pair's own record)")
    r.add_argument("--settings", help="settings file (TOML)")
    r.add_argument("--workers", type=int, help="processes writing reports with --clinician all (default: every core)")
    r.set_defaults(func=_report)
    im = sub.add_parser("import", help="turn FHIR QuestionnaireResponses or another system's export into the data contract")
    im.add_argument("kind", choices=["fhir", "mapped"], help="fhir: JSON/Bundle/NDJSON; mapped: CSV/Excel with a mapping file")
    im.add_argument("path", help="the file or folder to import")
    im.add_argument("--out", required=True, help="folder to write the contract's CSV files and import_report.csv")
    im.add_argument("--mapping", help="mapping file (TOML), for `import mapped`")
    im.add_argument("--default-clinician", help="fhir: clinician id for responses without an author")
    im.add_argument("--settings", help="settings file (TOML)")
    im.set_defaults(func=_import)
    ps = sub.add_parser("pseudonymise", help="keyed hashing of ids, direct identifiers dropped, dates of birth to age bands")
    ps.add_argument("input", help="the export (folder or .xlsx)")
    ps.add_argument("output", help="folder for the pseudonymised export")
    ps.add_argument("--key-file", required=True, help="secret key file (at least 32 random bytes); never written out")
    ps.add_argument("--settings", help="settings file (TOML): [privacy] direct_identifiers, age bands")
    ps.set_defaults(func=_pseudonymise)
    pb = sub.add_parser("publish", help="one folder per clinician: their own clients plus suppressed service benchmarks")
    pb.add_argument("path", help="the whole export (folder or .xlsx)")
    pb.add_argument("--out", required=True, help="folder to write the per-clinician folders into")
    pb.add_argument("--policy", choices=["nhs", "cms"], help="small-numbers policy of the benchmarks (default: the settings')")
    pb.add_argument("--settings", help="settings file (TOML)")
    pb.add_argument("--workers", type=int, help="processes writing folders (default: every core for a large service)")
    pb.set_defaults(func=_publish)
    d = sub.add_parser("demo", help="generate the synthetic demo clinic")
    d.add_argument("--out", default="demo-clinic", help="output folder (default: ./demo-clinic)")
    d.add_argument("--seed", type=int, default=20261126)
    d.add_argument("--clinicians", type=int, default=12)
    d.add_argument("--months", type=int, default=18)
    d.add_argument("--format", choices=["csv", "parquet"], default="csv")
    d.add_argument("--messy", action="store_true", help="inject realistic export defects")
    d.add_argument("--episodes", type=float, default=None,
                   help="client episodes per clinician per 18 months (default 35; 80 with --clinicians 2000 gives ~1M sessions)")
    d.set_defaults(func=_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the last line of defence: a sentence, not a traceback
        print(f"Something went wrong that the workbook did not expect: {type(exc).__name__}: {exc}\n"
              "Please report it (with the command you ran, but no client data).", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
