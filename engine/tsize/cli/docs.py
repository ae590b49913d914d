"""Generated documentation, from the code that defines it.

``tsize docs`` rewrites the parts of README.md and docs/reference.md between
``<!-- BEGIN name -->`` and ``<!-- END name -->`` markers and says which
changed. docs/reference.md holds the reference tables: outputs, inputs and
store tables (from the registry, through ``tsize.api``) and the commands
(from the argument parser it is given). README.md, the front door, holds the
seed notebook's measurements and, when asked, the accuracy report
(``tsize validate --all``) and the benchmark figures (``tsize bench``).
``tests/test_docs.py`` checks that every section but those two is current.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable
from pathlib import Path

from tsize import api
from tsize.errors import TsizeError

ROOT = Path(__file__).resolve().parents[3]
README = ROOT / "README.md"
REFERENCE = ROOT / "docs" / "reference.md"


def outputs_table() -> str:
    lines = ["| column | unit | table | description | reference |", "|---|---|---|---|---|"]
    for o in api.OUTPUTS:
        lines.append(f"| `{o.name}` | {o.unit or '-'} | {o.tier} | {o.description} | {o.reference or '-'} |")
    return "\n".join(lines)


def inputs_table() -> str:
    lines = ["| input | default | unit | stored in | description |", "|---|---|---|---|---|"]
    for i in api.INPUTS:
        default = "-" if i.default is None else ("NaN" if isinstance(i.default, float) and math.isnan(i.default)
                                                  else f"`{i.default!r}`".replace("'", '"'))
        choices = f" ({', '.join(map(str, i.choices))})" if i.choices else ""
        lines.append(f"| `{i.name}` | {default} | {i.unit or '-'} | {api.home_tier(i.name)} | "
                     f"{i.description}{choices} |")
    return "\n".join(lines)


def tiers_table() -> str:
    lines = ["| table | one row per combination of |", "|---|---|"]
    for tier, axes in api.TIERS.items():
        lines.append(f"| `{tier}` | {', '.join(axes) if tier != 'points' else 'every input (the grid point)'} |")
    return "\n".join(lines)


def commands(parser: argparse.ArgumentParser) -> str:
    """Every command with its arguments and options, from the argument parser."""
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {choice.dest: choice.help for choice in sub._choices_actions}
    blocks = []
    for name, command in sub.choices.items():
        lines = [f"**`tsize {name}`**: {helps.get(name, '')}", "", "| argument | meaning |", "|---|---|"]
        for action in command._actions:
            if action.dest == "help":
                continue
            flag = ", ".join(action.option_strings) or action.dest.upper()
            choices = f" (choices: {', '.join(map(str, action.choices))})" if action.choices else ""
            text = (action.help or "").replace("|", "/").replace("%%", "%")
            lines.append(f"| `{flag}` | {text}{choices} |")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def accuracy() -> str:
    return api.validation_markdown(api.validate(all_models=True), summary=True)


def bench(points: float | None = None) -> str:
    reports = [api.bench(phases=api.BENCH_PHASES)]
    if points:
        reports.append(api.bench(points=points, phases=("store", "workers1", "workers2", "ray", "store2")))
    return bench_markdown(reports, points)


def bench_markdown(reports: list[dict], points: float | None = None) -> str:
    """The README's benchmark table from ``tsize bench --json`` reports (capacity.toml, then grown)."""
    rows = ["| grid | phase | points/s (wall clock) | points per CPU-second | peak RSS (driver / worker) |",
            "|---|---|---:|---:|---:|"]
    notes = []
    for report, pts in zip(reports, (None, points)):
        label = f"capacity.toml grown to {pts:.0e} (tokens axis)" if pts else "capacity.toml"
        phases = report["phases"]
        for name, result in phases.items():
            shown, cpu = (f"{rate / 1e6:,.2f} M" if rate >= 1e5 else f"{rate:,.0f}" if rate == rate else "-"
                          for rate in (result["points_per_s"], result.get("points_per_cpu_s", math.nan)))
            worker = result.get("worker_peak_rss_mib") or math.nan
            rss = f"{result['peak_rss_mib']:,.0f} MiB" + ("" if math.isnan(worker) or name == "workers1"
                                                           else f" / {worker:,.0f} MiB")
            rows.append(f"| {label}, {result['points']:,} points | {result['label']} | {shown} | {cpu} | {rss} |")
        if "workers1" in phases and "workers2" in phases:
            w1, w2 = phases["workers1"], phases["workers2"]
            line = (f"{label}: 2 processes / 1 process = {w2['points_per_s'] / w1['points_per_s']:.2f}x wall clock "
                    f"(load average {w1.get('load_average', math.nan):.1f} / {w2.get('load_average', math.nan):.1f}); "
                    f"shards take {w1['shard_cpu_s'] / w1['points'] * 1e9:.0f} / "
                    f"{w2['shard_cpu_s'] / w2['points'] * 1e9:.0f} CPU-ns per point, "
                    f"{w1['points'] / w1['shard_cpu_s'] / 1e6:.1f} M points/s per busy core")
            if "ray" in phases:
                ray = phases["ray"]
                line += (f"; Ray / processes: wall {ray['seconds'] / w2['seconds']:.2f}, CPU "
                         f"{(ray['shard_cpu_s'] + ray['driver_cpu_s']) / (w2['shard_cpu_s'] + w2['driver_cpu_s']):.2f}"
                         f" (starting and stopping the local Ray instance: {ray['startup_s']:.1f} s more)")
            notes.append(line)
    return ("\n".join(rows) + "\n\n" + "".join(f"- {n}\n" for n in notes)
            + f"\nMeasured with `tsize docs --bench{f' --points {points:g}' if points else ''}` on {report['cpus']} "
              f"CPUs, Python {report['python']}.")


def seed_table() -> str:
    """The seed notebook's measurements next to tsize's estimates (``api.seed_checks``)."""
    lines = ["| measurement (seed notebook) | measured | tsize | error |", "|---|---:|---:|---:|"]
    for c in api.seed_checks():
        if c["unit"] == "MiB":
            lines.append(f"| {c['label']} | {c['measured']:,} MiB | {c['estimate']:,.0f} MiB | "
                         f"{c['estimate'] / c['measured'] - 1:+.1%} |")
        elif c["unit"] == "B":
            lines.append(f"| {c['label']} | {c['measured']:,} B | {c['estimate']:,.0f} B | "
                         f"{c['estimate'] / c['measured'] - 1:+.3%} |")
        else:
            lines.append(f"| {c['label']} | - | {c['estimate']:.1%} | - |")
    return "\n".join(lines)


def throughput_table() -> str:
    """Published training runs vs the predicted step time (``tsize validate --throughput``)."""
    return api.validate_throughput()["markdown"]


def sections(parser: argparse.ArgumentParser) -> dict[Path, dict[str, Callable[[], str]]]:
    """The sections kept current, by file: each name and the function that writes it."""
    return {README: {"seed": seed_table, "throughput": throughput_table, "serving": api.validate_serving_markdown},
            REFERENCE: {"outputs": outputs_table, "inputs": inputs_table, "tiers": tiers_table,
                        "commands": lambda: commands(parser)}}


def _pattern(name: str) -> re.Pattern:
    return re.compile(rf"(<!-- BEGIN {name} -->\n)(.*?)(<!-- END {name} -->)", re.DOTALL)


def replace(text: str, name: str, body: str) -> str:
    if not _pattern(name).search(text):
        raise TsizeError(f"no '<!-- BEGIN {name} -->' ... '<!-- END {name} -->' section")
    return _pattern(name).sub(lambda m: m.group(1) + body.rstrip("\n") + "\n" + m.group(3), text)


def section(text: str, name: str) -> str:
    match = _pattern(name).search(text)
    if not match:
        raise TsizeError(f"no '{name}' section")
    return match.group(2).rstrip("\n")


def update(parser: argparse.ArgumentParser, *, with_accuracy: bool = False, with_bench: bool = False,
           points: float | None = None, readme: Path | None = None, reference: Path | None = None
           ) -> dict[str, list[str]]:
    """Rewrite every generated section; return, per file, the sections whose text changed (empty: none did)."""
    readme, reference = readme or README, reference or REFERENCE
    makers = sections(parser)
    makers = {readme: dict(makers[README]), reference: makers[REFERENCE]}
    if with_accuracy:
        makers[readme]["accuracy"] = accuracy
    if with_bench:
        makers[readme]["bench"] = lambda: bench(points)
    changed: dict[str, list[str]] = {}
    for path, made in makers.items():
        text = original = path.read_text()
        changed[str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)] = names = []
        for name, make in made.items():
            new = replace(text, name, make())
            if new != text:
                names.append(name)
            text = new
        if text != original:
            path.write_text(text)
    return changed
