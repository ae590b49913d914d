"""The ``tsize`` command line: a thin layer over the library.

A user's mistake (:class:`tsize.errors.TsizeError`) or a path the file system
refuses becomes one line on stderr and exit status 2; anything else is a bug
and keeps its traceback.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Sequence

from tsize import __version__
from tsize.errors import TsizeError

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}


def command(name: str):
    def register(fn):
        COMMANDS[name] = fn
        return fn

    return register


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    return value


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def _add_point_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("configuration (defaults: the seed notebook's)")
    g.add_argument("--batch-size", type=_positive_int, nargs="+", default=[1], metavar="B",
                   help="micro-batch size per GPU; several values print a memory table (default 1)")
    g.add_argument("--seq-len", type=_positive_int, default=0, metavar="T",
                   help="sequence length (default: min(n_ctx, 4096))")
    g.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), default=None,
                   help="compute dtype; bfloat16/float16 mean PyTorch autocast with fp32 weights (default bfloat16)")
    g.add_argument("--precision", default=None, help="precision recipe id (tsize catalog precisions)")
    g.add_argument("--attention", choices=("naive", "flash"), default="flash", help="attention kernel (default flash)")
    g.add_argument("--dropout", type=_number, default=0.0, help="dropout probability (default 0)")
    g.add_argument("--optimizer", default="adamw", help="optimizer id (tsize catalog optimizers; default adamw)")
    g.add_argument("--recompute", choices=("none", "selective", "full"), default="none",
                   help="activation recomputation (default none)")
    g.add_argument("--gpu", default="nvidia_h100_sxm", help="GPU id (tsize catalog gpus; default nvidia_h100_sxm)")
    g.add_argument("--n-gpus", type=_positive_int, default=8, help="number of GPUs (default 8)")
    g.add_argument("--tp", type=_positive_int, default=1, help="tensor-parallel degree (default 1)")
    g.add_argument("--pp", type=_positive_int, default=1, help="pipeline-parallel degree (default 1)")
    g.add_argument("--zero", type=_positive_int, default=0, dest="zero_stage", help="ZeRO stage 0-3 (default 0)")
    g.add_argument("--sequence-parallel", action="store_true", help="sequence parallelism with --tp")
    g.add_argument("--tokens", type=_number, default=300e9, help="training tokens (default 300e9)")
    g.add_argument("--mfu", type=_number, default=0.3, dest="assumed_mfu",
                   help="assumed MFU for time to train (default 0.3)")
    g.add_argument("--iter-time", type=_number, default=math.nan, dest="iter_time_s", metavar="SECONDS",
                   help="measured seconds per iteration, to compute MFU")
    g.add_argument("--grad-accum", type=_positive_int, default=1, help="gradient accumulation steps (default 1)")
    g.add_argument("--pue", type=_number, default=1.2, help="facility PUE for energy (default 1.2)")
    g.add_argument("--usd-per-kwh", type=_number, default=0.10, help="electricity price (default 0.10)")


_POINT_KEYS = ("seq_len", "precision", "attention", "dropout", "optimizer", "recompute", "gpu", "n_gpus", "tp", "pp",
               "zero_stage", "sequence_parallel", "tokens", "assumed_mfu", "iter_time_s", "grad_accum", "pue",
               "usd_per_kwh")


def _point_inputs(args: argparse.Namespace) -> dict:
    return {k: getattr(args, k) for k in _POINT_KEYS}


@command("size")
def _size(args: argparse.Namespace) -> int:
    from tsize.api import json_safe, size
    from tsize.cli.report import render

    inputs = _point_inputs(args)
    if args.json:
        if len(args.batch_size) != 1:
            raise TsizeError(f"--json takes one --batch-size, got {len(args.batch_size)}")
        row = size(args.model, dtype=args.dtype, batch_size=args.batch_size[0], **inputs)
        print(json.dumps(json_safe(row), indent=2))
    else:
        render(args.model, dtype=args.dtype, causal=args.causal, batch_size=args.batch_size, **inputs)
    return 0


@command("catalog")
def _catalog(args: argparse.Namespace) -> int:
    from rich.table import Table

    from tsize import catalog
    from tsize.api import json_safe
    from tsize.cli import fmt

    if args.which == "models":
        rows = [{"name": m.name, "family": m.family, "n_layer": m.n_layer, "d_model": m.d_model, "n_head": m.n_head,
                 "n_kv_head": m.kv_heads, "d_ff": m.d_ff, "vocab_size": m.vocab_size, "n_ctx": m.n_ctx,
                 "n_experts": m.n_experts, "top_k": m.top_k, "published_params": m.published_params,
                 "source": m.source} for m in catalog.models().values()]
    elif args.which == "gpus":
        rows = [{"id": g.id, "vendor": g.vendor, "name": g.name, "memory_bytes": g.memory_bytes,
                 "memory_usable_bytes": g.memory_usable_bytes,
                 **{f"{k}_flops_per_s": v for k, v in g.peak_flops_per_s.items()},
                 "tdp_w": g.tdp_w, "price_usd": g.price_usd, "cloud_usd_per_hour": g.cloud_usd_per_hour,
                 "source": g.source} for g in catalog.gpus().values()]
    elif args.which == "precisions":
        rows = [{k: v for k, v in vars(r).items()} for r in catalog.precisions().values()]
    else:
        rows = [{k: v for k, v in vars(o).items()} for o in catalog.optimizers().values()]
    rows = [json_safe(r) for r in rows]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    columns = [c for c in rows[0] if c != "source" and c != "description"]
    table = Table(title=f"{args.which} ({len(rows)}); catalogs/{args.which}.toml has sources and dates",
                  title_justify="left")
    for c in columns:
        table.add_column(c)
    for r in rows:
        cells = []
        for c in columns:
            v = r.get(c)
            if v is None:
                cells.append("-")
            elif c.endswith("_bytes"):
                cells.append(fmt.gib(v, 1))
            elif c.endswith("_flops_per_s"):
                cells.append(fmt.tflops(v))
            elif isinstance(v, int) and not isinstance(v, bool) and v > 9999:
                cells.append(fmt.count(v))
            else:
                cells.append(str(v))
        table.add_row(*cells)
    fmt.console().print(table)
    return 0


@command("sweep")
def _sweep(args: argparse.Namespace) -> int:
    from tsize import spec, store
    from tsize.cli import fmt

    loaded = spec.load(args.spec)
    result = store.write(loaded, path=args.db, chunk_points=args.chunk_points,
                         progress=False if args.quiet else None, wait_s=args.wait)
    if not args.quiet:
        share = result["fits"] / result["points"] if result["points"] else 0.0
        rate = result["points"] / max(result["seconds"], 1e-9)
        print(f"sweep {result['sweep']!r}: {result['points']:,} points, {result['fits']:,} fit ({fmt.pct(share, 1)}), "
              f"{result['seconds']:.2f} s ({rate:,.0f} points/s) -> {result['db']} "
              f"(view 'results', sweep = '{result['sweep']}')")
    return 0


@command("query")
def _query(args: argparse.Namespace) -> int:
    from tsize import store
    from tsize.cli import fmt
    from tsize.cli.output import check_output, write_frame
    from tsize.paths import read_text

    if (args.sql is None) == (args.file is None):
        raise TsizeError("give one SQL statement or --file FILE")
    if args.output:  # refuse before running the query
        check_output(args.output, store=store.db_path(args.db), force=args.force)
    sql = read_text(args.file, "query file") if args.file else args.sql
    frame = store.query(sql, path=args.db, wait_s=args.wait, form=args.format)
    write_frame(frame, args.format, args.output, title=None, console=fmt.console(), store=store.db_path(args.db),
                force=args.force)
    return 0


@command("sweeps")
def _sweeps(args: argparse.Namespace) -> int:
    from tsize import store
    from tsize.cli import fmt

    write_frame(store.sweeps(args.db), "table", None, title="stored sweeps", console=fmt.console())
    return 0


@command("chart")
def _chart(args: argparse.Namespace) -> int:
    from tsize import api, charts

    source = dict(sweep=args.sweep if args.sql is None else None, sql=args.sql, models=args.model,
                  tokens=args.tokens)
    if args.kind == "pareto":
        data = api.fleet_options(path=args.db, **source)
    else:
        data = api.fleets(deadline_days=args.deadline_days, path=args.db, **source)
    if data.is_empty():
        what = f"sweep {args.sweep!r}" if args.sql is None else "the query"
        raise TsizeError(f"no points to chart: {what} selected no rows (stored sweeps: tsize sweeps; "
                         f"the fleet study: tsize sweep sweeps/fleet.toml)")
    if args.kind == "pareto":
        chart = charts.pareto(data)
    else:
        chart = charts.fleet(data, deadline_days=args.deadline_days)
    path = charts.save(chart, args.output or f"outputs/{args.kind}.html")
    print(f"chart -> {path}")
    return 0


@command("validate")
def _validate(args: argparse.Namespace) -> int:
    from tsize.cli import fmt
    from tsize.validation import validate

    try:
        from tsize.validation import measure

        measure.require()
    except RuntimeError as exc:
        raise TsizeError(str(exc)) from None
    if args.all == (args.model is not None):
        raise TsizeError("give one MODEL or --all")
    options = dict(batch_size=args.batch_size, seq_len=args.seq_len)
    checks = validate.run_all(**options) if args.all else validate.run(args.model, **options)
    failed = [c for c in checks if not abs(c.error) <= args.tolerance]
    if args.json:
        print(json.dumps([c.as_dict() for c in checks], indent=2))
    elif args.markdown:
        print(validate.markdown(checks))
    else:
        from rich.table import Table

        table = Table(title=f"estimate vs measured (tolerance {args.tolerance:.1%})", title_justify="left")
        for column in ("model", "quantity", "setting", "estimate", "measured", "error"):
            table.add_column(column, justify="right" if column in ("estimate", "measured", "error") else "left")
        for c in checks:
            style = "red" if c in failed else ""
            table.add_row(c.model, c.quantity, c.setting, f"{c.estimate:,.0f}", f"{c.measured:,.0f}",
                          f"[{style}]{c.error:+.2%}[/]" if style else f"{c.error:+.2%}")
        fmt.console().print(table)
    if failed:
        worst = max(failed, key=lambda c: abs(c.error))
        print(f"tsize: {len(failed)} of {len(checks)} estimates off by more than {args.tolerance:.1%} "
              f"(worst: {worst.model} {worst.quantity} {worst.setting}: {worst.error:+.2%})", file=sys.stderr)
        return 1
    return 0


@command("docs")
def _docs(args: argparse.Namespace) -> int:
    from tsize.cli import docs

    done = docs.update(with_accuracy=args.accuracy, with_bench=args.bench, points=args.points)
    print(f"README.md: regenerated {', '.join(done)}")
    return 0


@command("bench")
def _bench(args: argparse.Namespace) -> int:
    from tsize.cli import fmt
    from tsize.validation import bench

    report = bench.run(args.spec, points=args.points, sample=args.sample)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    phases = report["phases"]
    points = phases["evaluate"]["points"] if "evaluate" in phases else phases["store"]["points"]
    console = fmt.console()
    console.print(f"tsize bench: {points:,} points ({report['spec']}), {report['cpus']} CPUs, "
                  f"Python {report['python']}")
    for name, result in phases.items():
        extra = f", file {fmt.mib(result['file_bytes'])}" if "file_bytes" in result else ""
        extra += f", {result['columns']} columns" if "columns" in result else ""
        console.print(f"  {bench.LABELS[name]:62s} {result['points_per_s']:>14,.0f} points/s   "
                      f"peak RSS {result['peak_rss_mib']:,.0f} MiB{extra}")
    return 0


def write_frame(frame, fmt_name: str, output: str | None, *, title: str | None, console, max_rows: int = 200):
    """Print or save a Polars frame as a table, CSV, JSON or Parquet."""
    if fmt_name == "parquet" and not output:
        raise TsizeError("--format parquet needs --output FILE")
    if output:
        from pathlib import Path

        Path(output).parent.mkdir(parents=True, exist_ok=True)
        {"csv": frame.write_csv, "json": frame.write_json, "parquet": frame.write_parquet,
         "table": frame.write_csv}[fmt_name](output)
        print(f"{frame.height:,} rows -> {output}", file=sys.stderr)
        return
    if fmt_name == "csv":
        sys.stdout.write(frame.write_csv())
    elif fmt_name == "json":
        sys.stdout.write(frame.write_json() + "\n")
    else:
        from rich.table import Table

        table = Table(title=title, title_justify="left")
        for column in frame.columns:
            table.add_column(column, justify="right" if frame.schema[column].is_numeric() else "left")
        for row in frame.head(max_rows).iter_rows():
            table.add_row(*("-" if v is None else (f"{v:.6g}" if isinstance(v, float) else str(v)) for v in row))
        console.print(table)
        if frame.height > max_rows:
            console.print(f"({frame.height:,} rows, {max_rows} shown; use --format csv or --output FILE for all)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tsize", description="Transformer sizing and GPU-fleet planning.")
    parser.add_argument("--version", action="version", version=f"tsize {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("size", help="everything about one configuration: params, memory, FLOPs, MFU, time, cost",
                       description="Every section of the seed notebook, for one configuration.")
    p.add_argument("model", help="catalog name, a .toml model file, or a Hugging Face config.json")
    _add_point_options(p)
    p.add_argument("--causal", action="store_true", help="show FLOPs with causal accounting (scores/values halved)")
    p.add_argument("--json", action="store_true", help="print one flat JSON object of input and output columns")

    p = sub.add_parser("catalog", help="list a catalog", description="List a catalog.")
    p.add_argument("which", choices=("models", "gpus", "precisions", "optimizers"))
    p.add_argument("--json", action="store_true", help="print JSON")

    db_help = "DuckDB file (default: $TSIZE_DB or outputs/tsize.duckdb)"
    wait_help = "seconds to wait while another tsize process writes the file (default 30)"
    p = sub.add_parser("sweep", help="evaluate a sweep spec into the DuckDB store",
                       description="Evaluate a sweep spec (sweeps/*.toml) and store it, replacing a sweep of the "
                                   "same name atomically.")
    p.add_argument("spec", help="sweep spec file (TOML)")
    p.add_argument("--db", default=None, help=db_help)
    p.add_argument("--chunk-points", type=_positive_int, default=1 << 18, help="grid points per chunk (memory bound)")
    p.add_argument("--wait", type=_number, default=30.0, help=wait_help)
    p.add_argument("--quiet", action="store_true", help="no progress bar, no summary")

    p = sub.add_parser("query", help="run read-only SQL against the store",
                       description="Run one SELECT (or EXPLAIN) read-only against the store (tables: results, "
                                   "sweeps); DuckDB is sandboxed: no other file, no ATTACH, no settings.")
    p.add_argument("sql", nargs="?", default=None, help="SQL statement")
    p.add_argument("--file", default=None, help="read the SQL from a file")
    p.add_argument("--db", default=None, help=db_help)
    p.add_argument("--format", choices=("table", "csv", "json", "parquet"), default="table", help="output format")
    p.add_argument("--output", default=None, help="write to FILE instead of stdout (never the store itself)")
    p.add_argument("--force", action="store_true", help="let --output overwrite an existing file")
    p.add_argument("--wait", type=_number, default=30.0, help=wait_help)

    p = sub.add_parser("chart", help="chart fleet options from the store (pareto, fleet)",
                       description="Charts from the store: 'pareto' (cloud cost vs days for the layouts that fit, "
                                   "Pareto front, and what does not fit) or 'fleet' (per GPU type, the smallest fleet "
                                   "that meets a deadline). Written as .html (self-contained), .png or .svg.")
    p.add_argument("kind", choices=("pareto", "fleet"))
    p.add_argument("--db", default=None, help=db_help)
    p.add_argument("--sweep", default="fleet", help="stored sweep to chart (default fleet)")
    p.add_argument("--sql", default=None, help="chart the rows of this query of 'results' instead of a sweep")
    p.add_argument("--model", action="append", default=None, help="only this model (repeatable)")
    p.add_argument("--tokens", action="append", type=_number, default=None, help="only this token count (repeatable)")
    p.add_argument("--deadline-days", type=_number, default=30.0, help="fleet: days the training must fit in")
    p.add_argument("--output", default=None, help="output file: .html, .png or .svg (default outputs/KIND.html)")

    p = sub.add_parser("validate", help="measure the real PyTorch model and show each estimate's error",
                       description="Build the real PyTorch model (nanoGPT-style or Hugging Face) and compare tsize's "
                                   "estimates with what PyTorch measures. Needs: pip install -e '.[validate]'. "
                                   "Exit status 1 when an error exceeds --tolerance.")
    p.add_argument("model", nargs="?", default=None, help="catalog name, .toml model file or Hugging Face config.json")
    p.add_argument("--all", action="store_true", help="every model of the catalog")
    p.add_argument("--batch-size", type=_positive_int, default=1, help="micro-batch measured (default 1)")
    p.add_argument("--seq-len", type=_positive_int, default=None,
                   help="sequence length measured (default min(n_ctx, 1024); 64 for mixtures of experts)")
    p.add_argument("--tolerance", type=_number, default=0.05, help="largest acceptable relative error (default 0.05)")
    p.add_argument("--json", action="store_true", help="print the checks as JSON")
    p.add_argument("--markdown", action="store_true", help="print the checks as a Markdown table")

    p = sub.add_parser("bench", help="measure speed and memory (evaluation, DuckDB, scalar loop)",
                       description="Benchmark: points/s and peak memory of evaluation, of a sweep into DuckDB, "
                                   "and of a plain per-point Python loop over the same formulas.")
    p.add_argument("--spec", default=None, help="sweep spec to time (default sweeps/capacity.toml)")
    p.add_argument("--points", type=_number, default=None,
                   help="grow the grid to at least this many points (repeats the tokens axis)")
    p.add_argument("--sample", type=_positive_int, default=2000, help="points timed in the scalar loop")
    p.add_argument("--json", action="store_true", help="print the report as JSON")

    p = sub.add_parser("docs", help="regenerate README sections (outputs, inputs, commands; accuracy, bench)",
                       description="Rewrite the generated sections of README.md from the code.")
    p.add_argument("--accuracy", action="store_true", help="also rerun tsize validate --all (minutes)")
    p.add_argument("--bench", action="store_true", help="also rerun tsize bench")
    p.add_argument("--points", type=_number, default=None, help="with --bench: also time a grid of this many points")

    p = sub.add_parser("sweeps", help="list the sweeps in the store", description="List the stored sweeps.")
    p.add_argument("--db", default=None, help=db_help)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print("tsize: interrupted", file=sys.stderr)
        return 130
    except TsizeError as exc:
        print(f"tsize: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the file system refused a path the user gave (permission, missing, a directory)
        print(f"tsize: error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
