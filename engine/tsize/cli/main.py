"""The ``tsize`` command line: a thin layer over :mod:`tsize.api`.

Every command body calls one api function and renders its result. The
options of ``tsize size`` are generated from ``registry.INPUTS`` (through the
api): a new registry input is a new option, with its default, valid values
and help. A user's mistake (:class:`tsize.errors.TsizeError`) or a path the
file system refuses becomes one line on stderr and exit status 2; anything
else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Sequence

from tsize import api
from tsize.errors import TsizeError

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}


def command(name: str):
    def register(fn):
        COMMANDS[name] = fn
        return fn

    return register


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


#: Spellings kept from before the options were generated (``--name-with-dashes`` works too).
ALIASES = {"assumed_mfu": ("--mfu",), "iter_time_s": ("--iter-time",), "zero_stage": ("--zero",)}
#: Inputs given as positional arguments rather than options.
POSITIONAL = ("model",)
#: Inputs that take several values on the command line (one table row each).
SEVERAL = ("batch_size",)


def _default_text(spec) -> str:
    if spec.default is None:
        return ""
    if isinstance(spec.default, float) and math.isnan(spec.default):
        return "default: not set"
    return f"default {spec.default:g}" if isinstance(spec.default, float) else f"default {spec.default}"


def input_option(group, spec) -> None:
    """One option for one registry input: flag, type, choices, default and help from the registry."""
    flags = (f"--{spec.name.replace('_', '-')}",) + ALIASES.get(spec.name, ())
    valid = spec.valid()
    notes = "; ".join(x for x in (f"unit {spec.unit}" if spec.unit not in ("", "1") else "",
                                  f"valid: {valid}" if valid else "", _default_text(spec)) if x)
    text = f"{spec.description}" + (f" ({notes})" if notes else "")
    options: dict = dict(dest=spec.name, default=None, help=text.replace("%", "%%"))
    if spec.kind == "bool":
        options["action"] = argparse.BooleanOptionalAction
    elif spec.kind == "int":
        options.update(type=_integer, metavar="N")
    elif spec.kind == "float":
        options.update(type=_number, metavar="X")
    elif spec.kind == "choice" and all(isinstance(c, str) for c in spec.choices):
        options["choices"] = spec.choices
    else:
        options["metavar"] = spec.name.upper()
    if spec.name in SEVERAL:
        options["nargs"] = "+"
    group.add_argument(*flags, **options)


def _add_point_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("configuration (every input of the registry; defaults: the seed notebook's)")
    g.add_argument("--dtype", choices=api.DTYPES, default=None,
                   help=f"compute dtype, choosing that dtype's default precision recipe; bfloat16/float16 mean "
                        f"PyTorch autocast with fp32 weights (default {api.DEFAULT_DTYPE})")
    for spec in api.INPUTS:
        if spec.name not in POSITIONAL:
            input_option(g, spec)


def _point_inputs(args: argparse.Namespace) -> dict:
    return {spec.name: getattr(args, spec.name) for spec in api.INPUTS if spec.name not in POSITIONAL}


def _db(p: argparse.ArgumentParser, also: str = "") -> None:
    p.add_argument("--db", default=None, help=f"DuckDB file (default: $TSIZE_DB or outputs/tsize.duckdb){also}")


def _wait(p: argparse.ArgumentParser) -> None:
    p.add_argument("--wait", type=_number, default=api.WAIT_S, metavar="SECONDS",
                   help=f"seconds to wait while another tsize process writes the file (default {api.WAIT_S:g})")


def _output_format(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=("table", "csv", "json", "parquet"), default="table", help="output format")
    p.add_argument("--output", default=None, help="write to FILE instead of stdout")


@command("size")
def _size(args: argparse.Namespace) -> int:
    from tsize.cli.report import render, render_serving

    inputs = _point_inputs(args)
    if args.json or args.mode == "serve":
        batches = inputs.pop("batch_size") or [None]
        if len(batches) != 1:
            raise TsizeError(f"--json and --mode serve take one --batch-size, got {len(batches)}")
        row = api.size(args.model, dtype=args.dtype, batch_size=batches[0], **inputs)
        if args.mode == "serve":
            row = api.check_serving(row)
        if args.json:
            print(json.dumps(api.json_safe(row), indent=2))
        else:
            render_serving(row)
        return 0
    else:
        render(api.report(args.model, dtype=args.dtype, **inputs), causal=args.causal)
    return 0


@command("catalog")
def _catalog(args: argparse.Namespace) -> int:
    from tsize.cli import fmt, report

    rows = api.catalog_rows(args.which)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        fmt.console().print(report.catalog_table(rows, title=f"{args.which} ({len(rows)}); catalogs/{args.which}.toml "
                                                          f"has sources and dates"))
    return 0


@command("sweep")
def _sweep(args: argparse.Namespace) -> int:
    from tsize.cli import fmt

    r = api.sweep(args.spec, path=args.db, workers=args.workers, ray=args.ray, resume=args.resume, format=args.format,
                  output=args.output, shard_points=args.shard_points, chunk_points=args.chunk_points,
                  progress=False if args.quiet else None, wait_s=args.wait)
    if not args.quiet:
        where = (f"{r['db']} (view 'results', sweep = '{r['sweep']}')" if "db" in r
                 else f"{r['directory']} (tsize query --db {r['directory']})")
        print(f"sweep {r['sweep']!r}: {r['points']:,} points, {r['fits']:,} fit ({fmt.pct(r['fit_share'], 1)}), "
              f"{r['seconds']:.2f} s ({r['points_per_s']:,.0f} points/s) -> {where}")
    return 0


@command("query")
def _query(args: argparse.Namespace) -> int:
    from tsize.cli import fmt
    from tsize.cli.output import check_output, write_frame

    if args.output:  # refuse before running the query
        check_output(args.output, store=api.store_path(args.db), force=args.force)
    frame = api.query(args.sql, file=args.file, path=args.db, wait_s=args.wait, form=args.format)
    write_frame(frame, args.format, args.output, title=None, console=fmt.console(), store=api.store_path(args.db),
                force=args.force)
    return 0


@command("sweeps")
def _sweeps(args: argparse.Namespace) -> int:
    from tsize.cli import fmt
    from tsize.cli.output import write_frame

    write_frame(api.sweeps(args.db), "table", None, title="stored sweeps", console=fmt.console())
    return 0


@command("chart")
def _chart(args: argparse.Namespace) -> int:
    path = api.chart(args.kind, path=args.db, sweep=args.sweep, sql=args.sql, models=args.model, tokens=args.tokens,
                     deadline_days=args.deadline_days, output=args.output)
    print(f"chart -> {path}")
    return 0


@command("validate")
def _validate(args: argparse.Namespace) -> int:
    from tsize.cli import fmt, report

    if args.serving:  # serving latency vs published measurements: no PyTorch needed
        return _validate_serving(args)
    if args.throughput:  # training step time vs published runs: no PyTorch needed
        return _validate_throughput(args)
    checks = api.validate(args.model, all_models=args.all, batch_size=args.batch_size, seq_len=args.seq_len)
    failed = [c for c in checks if not abs(c.error) <= args.tolerance]
    if args.json:
        print(json.dumps([c.as_dict() for c in checks], indent=2))
    elif args.markdown:
        print(api.validation_markdown(checks))
    else:
        fmt.console().print(report.checks_table(checks, failed, tolerance=args.tolerance))
    if failed:
        worst = max(failed, key=lambda c: abs(c.error))
        print(f"tsize: {len(failed)} of {len(checks)} estimates off by more than {args.tolerance:.1%} "
              f"(worst: {worst.model} {worst.quantity} {worst.setting}: {worst.error:+.2%})", file=sys.stderr)
        return 1
    return 0


def _validate_serving(args: argparse.Namespace) -> int:
    """``tsize validate --serving``: published serving measurements vs the estimate; exit 1 when the target is
    missed over the exactly stated sets."""
    result = api.validate_serving()
    if args.json:
        print(json.dumps({k: result[k] for k in ("cases", "summary", "target")}, indent=2))
    else:
        print(result["markdown"])
    if not result["target"]["met"]:
        print(f"tsize: {result['line']}", file=sys.stderr)
    return 0 if result["target"]["met"] else 1


def _validate_throughput(args: argparse.Namespace) -> int:
    """``tsize validate --throughput``: published training runs vs the predicted step time."""
    result = api.validate_throughput()
    if args.json:
        print(json.dumps({"cases": result["cases"], "summary": result["summary"]}, indent=2))
    else:
        print(result["markdown"])
    if not result["target_met"]:
        row, (median, largest) = result["summary"]["all"], result["targets"]
        print(f"tsize: step-time target missed: median |error| {row['median_abs_error']:.1%} (target "
              f"{median:.0%}), largest {row['max_abs_error']:.1%} (target {largest:.0%}) over {row['cases']} "
              f"published runs", file=sys.stderr)
    return 0 if result["target_met"] else 1


@command("docs")
def _docs(args: argparse.Namespace) -> int:
    from tsize.cli import docs

    changed = docs.update(build_parser(), with_accuracy=args.accuracy, with_bench=args.bench, points=args.points)
    for path, sections in changed.items():
        print(f"{path}: " + (f"updated {', '.join(sections)}" if sections else "already current"))
    return 0


@command("bench")
def _bench(args: argparse.Namespace) -> int:
    from tsize.cli import fmt

    report = api.bench(args.spec, points=args.points, sample=args.sample,
                       phases=tuple(p.strip() for p in args.phases.split(",")))
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    phases = report["phases"]
    points = max(result["points"] for result in phases.values())
    console = fmt.console()
    console.print(f"tsize bench: {points:,} points ({report['spec']}), {report['cpus']} CPUs, "
                  f"Python {report['python']}")
    for result in phases.values():
        extra = f", file {fmt.mib(result['file_bytes'])}" if "file_bytes" in result else ""
        extra += f", {result['columns']} columns" if "columns" in result else ""
        worker = result.get("worker_peak_rss_mib") or math.nan
        extra += "" if math.isnan(worker) else f", workers {worker:,.0f} MiB"
        cpu = result.get("points_per_cpu_s")
        cpu = f" ({cpu:,.0f} per CPU-second)" if cpu else ""
        console.print(f"  {result['label']:62s} {result['points_per_s']:>14,.0f} points/s{cpu}   "
                      f"peak RSS {result['peak_rss_mib']:,.0f} MiB{extra}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tsize", description="Transformer sizing and GPU-fleet planning.")
    parser.add_argument("--version", action="version", version=f"tsize {api.__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("size", help="everything about one configuration: params, memory, FLOPs, MFU, time, cost",
                       description="Every section of the seed notebook, for one configuration. "
                                   "Example: tsize size llama-3-70b --n-gpus 64 --tp 8 --zero 1")
    p.add_argument("model", help="catalog name, a .toml model file, or a Hugging Face config.json")
    _add_point_options(p)
    p.add_argument("--causal", action="store_true", help="show FLOPs with causal accounting (scores/values halved)")
    p.add_argument("--json", action="store_true", help="print one flat JSON object of input and output columns")

    p = sub.add_parser("catalog", help="list a catalog", description="List a catalog. Example: tsize catalog gpus")
    p.add_argument("which", choices=api.CATALOGS)
    p.add_argument("--json", action="store_true", help="print JSON")

    p = sub.add_parser("sweep", help="evaluate a sweep spec into the DuckDB store",
                       description="Evaluate a sweep spec (sweeps/*.toml) and store it, replacing a sweep of the "
                                   "same name atomically. Example: tsize sweep sweeps/seed.toml")
    p.add_argument("spec", help="sweep spec file (TOML)")
    _db(p)
    p.add_argument("--chunk-points", type=_integer, default=None, metavar="N",
                   help="grid points per chunk, bounds memory (default: tsize.frames.CHUNK_POINTS)")
    _wait(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar, no summary")
    p.add_argument("--workers", type=_integer, default=None, metavar="N",
                   help="local worker processes (default: every core, but 1 into DuckDB on 2 cores or fewer; "
                        "1 evaluates in this process)")
    p.add_argument("--ray", nargs="?", const=True, default=None, metavar="ADDRESS",
                   help="run the shards as Ray tasks: 'auto' for this machine's cluster, HOST:PORT, or no address "
                        "for a local Ray instance (pip install 'tsize[ray]')")
    p.add_argument("--format", choices=("duckdb", "parquet"), default="duckdb",
                   help="duckdb: end in the --db file (default); parquet: keep a Parquet dataset in --output DIR")
    p.add_argument("--output", default=None, metavar="DIR",
                   help="directory of the Parquet dataset (with duckdb: keep the parts there)")
    p.add_argument("--resume", action="store_true", help="compute only the shards an interrupted run left missing")
    p.add_argument("--shard-points", type=_integer, default=None, metavar="N",
                   help="grid points per shard (default 1048576)")

    p = sub.add_parser("query", help="run read-only SQL against the store",
                       description="Run SQL read-only against the store (tables: results, sweeps), or against a "
                                   "sweep's Parquet dataset when --db names its directory. One SELECT (or EXPLAIN); DuckDB "
                                   "is sandboxed: no other file, no ATTACH, no settings. "
                                   "Example: tsize query \"SELECT count(*) FROM results\"")
    p.add_argument("sql", nargs="?", default=None, help="SQL statement")
    p.add_argument("--file", default=None, help="read the SQL from a file")
    _db(p, "; or a Parquet dataset directory (tsize sweep --format parquet)")
    _output_format(p)
    p.add_argument("--force", action="store_true", help="let --output overwrite an existing file")
    _wait(p)

    p = sub.add_parser("chart", help="chart fleet or serving options from the store (pareto, fleet, breakdown, serving)",
                       description="Charts from the store: 'pareto' (cloud cost vs days for the layouts that fit, "
                                   "Pareto front, and what does not fit) or 'fleet' (per GPU type, the smallest fleet "
                                   "that meets a deadline), 'breakdown' (where each option's predicted step time goes: compute, "
                                   "communication, bubble, optimizer) or 'serving' (cost per million output tokens vs "
                                   "time per output token, Pareto "
                                   "front per model and context). Written as .html (self-contained), .png or .svg. "
                                   "Example: tsize chart fleet --deadline-days 30")
    p.add_argument("kind", choices=api.CHARTS)
    _db(p)
    p.add_argument("--sweep", default=None, help="stored sweep to chart (default fleet; serving for 'serving')")
    p.add_argument("--sql", default=None, help="chart the rows of this query of 'results' instead of a sweep")
    p.add_argument("--model", action="append", default=None, help="only this model (repeatable)")
    p.add_argument("--tokens", action="append", type=_number, default=None, help="only this token count (repeatable)")
    p.add_argument("--deadline-days", type=_number, default=30.0, help="fleet: days the training must fit in")
    p.add_argument("--output", default=None, help="output file: .html, .png or .svg (default outputs/KIND.html)")

    p = sub.add_parser("validate", help="measure the real PyTorch model and show each estimate's error",
                       description="Build the real PyTorch model (nanoGPT-style or Hugging Face) and compare tsize's "
                                   "estimates with what PyTorch measures. Needs: pip install -e '.[validate]'. "
                                   "Exit status 1 when an error exceeds --tolerance. Example: tsize validate gpt2")
    p.add_argument("model", nargs="?", default=None, help="catalog name, .toml model file or Hugging Face config.json")
    p.add_argument("--all", action="store_true", help="every model of the catalog")
    p.add_argument("--throughput", action="store_true",
                   help="instead: predict the published training runs of catalogs/published_runs.toml (step time, "
                        "TFLOP/s, tokens/s); exit 1 when the accuracy target is missed")
    p.add_argument("--batch-size", type=_integer, default=1, help="micro-batch measured (default 1)")
    p.add_argument("--seq-len", type=_integer, default=None,
                   help="sequence length measured (default min(n_ctx, 1024); 64 for mixtures of experts)")
    p.add_argument("--tolerance", type=_number, default=0.05, help="largest acceptable relative error (default 0.05)")
    p.add_argument("--json", action="store_true", help="print the checks as JSON")
    p.add_argument("--markdown", action="store_true", help="print the checks as a Markdown table")
    p.add_argument("--serving", action="store_true",
                   help="instead: serving latency and throughput vs the published measurements of "
                        "catalogs/published_serving.toml (Markdown table, README); exit 1 when the median |error| "
                        "over the exactly stated sets misses the 15%% target")

    p = sub.add_parser("bench", help="measure speed and memory (evaluation, DuckDB, scalar loop, workers, Ray)",
                       description="Benchmark: points/s (wall clock and per CPU-second) and peak memory of "
                                   "evaluation, of the long-form frame, of a sweep into DuckDB, "
                                   "of a plain per-point Python loop over the same formulas, and of sharded sweeps "
                                   "on 1 and 2 processes and on a local Ray instance. Example: tsize bench --points 1e8")
    p.add_argument("--spec", default=None, help="sweep spec to time (default sweeps/capacity.toml)")
    p.add_argument("--points", type=_number, default=None,
                   help="grow the grid to at least this many points (repeats the tokens axis)")
    p.add_argument("--sample", type=_integer, default=2000, help="points timed in the scalar loop")
    p.add_argument("--phases", default="evaluate,frame,store,scalar",
                   help=f"comma-separated phases to time, of: {', '.join(api.BENCH_PHASES)}")
    p.add_argument("--json", action="store_true", help="print the report as JSON")

    p = sub.add_parser("docs", help="regenerate the generated docs (README sections, docs/reference.md)",
                       description="Rewrite the generated sections of README.md and docs/reference.md from the code "
                                   "and say which changed. Example: tsize docs --bench")
    p.add_argument("--accuracy", action="store_true", help="also rerun tsize validate --all (minutes)")
    p.add_argument("--bench", action="store_true", help="also rerun tsize bench")
    p.add_argument("--points", type=_number, default=None, help="with --bench: also time a grid of this many points")

    p = sub.add_parser("sweeps", help="list the sweeps in the store",
                       description="List the stored sweeps. Example: tsize sweeps --db outputs/tsize.duckdb")
    _db(p)
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
