"""Generated sections of the README, from the code that defines them.

``tsize docs`` rewrites the parts of README.md between ``<!-- BEGIN name -->``
and ``<!-- END name -->`` markers: the output and input tables (from the
registry), the command reference (from the argument parser), and, when asked,
the accuracy report (``tsize validate --all``) and the benchmark figures
(``tsize bench``). ``tests/test_docs.py`` checks the first three are current.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from tsize.errors import TsizeError
from tsize.registry import INPUTS, OUTPUTS, TIERS

ROOT = Path(__file__).resolve().parents[3]
README = ROOT / "README.md"


def outputs_table() -> str:
    lines = ["| column | unit | table | description | reference |", "|---|---|---|---|---|"]
    for o in OUTPUTS:
        lines.append(f"| `{o.name}` | {o.unit or '-'} | {o.tier} | {o.description} | {o.reference or '-'} |")
    return "\n".join(lines)


def inputs_table() -> str:
    lines = ["| input | default | unit | stored in | description |", "|---|---|---|---|---|"]
    from tsize.registry import home_tier

    for i in INPUTS:
        default = "-" if i.default is None else ("NaN" if isinstance(i.default, float) and math.isnan(i.default)
                                                  else f"`{i.default!r}`".replace("'", '"'))
        choices = f" ({', '.join(map(str, i.choices))})" if i.choices else ""
        lines.append(f"| `{i.name}` | {default} | {i.unit or '-'} | {home_tier(i.name)} | {i.description}{choices} |")
    return "\n".join(lines)


def tiers_table() -> str:
    lines = ["| table | one row per combination of |", "|---|---|"]
    for tier, axes in TIERS.items():
        lines.append(f"| `{tier}` | {', '.join(axes) if tier != 'points' else 'every input (the grid point)'} |")
    return "\n".join(lines)


def commands() -> str:
    """Every command with its arguments and options, from the argument parser."""
    from tsize.cli.main import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    helps = {choice.dest: choice.help for choice in sub._choices_actions}
    blocks = []
    for name, command in sub.choices.items():
        lines = [f"**`tsize {name}`**: {helps.get(name, '')}", "", "| argument | meaning |", "|---|---|"]
        for action in command._actions:
            if action.dest == "help":
                continue
            flag = ", ".join(action.option_strings) or action.dest.upper()
            choices = f" (choices: {', '.join(map(str, action.choices))})" if action.choices else ""
            text = (action.help or "").replace("|", "/")
            lines.append(f"| `{flag}` | {text}{choices} |")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def accuracy() -> str:
    from tsize.validation import validate

    return validate.summary_markdown(validate.run_all())


def bench(points: float | None = None) -> str:
    from tsize.validation import bench as bench_mod

    reports = [bench_mod.run(phases=bench_mod.PHASES)]
    if points:
        reports.append(bench_mod.run(points=points, phases=("store", "workers1", "workers2", "ray", "store2")))
    return bench_markdown(reports, points)


def bench_markdown(reports: list[dict], points: float | None = None) -> str:
    """The README's benchmark table from ``tsize bench --json`` reports (capacity.toml, then grown)."""
    from tsize.validation import bench as bench_mod

    rows = ["| grid | phase | points/s | peak RSS (driver / worker) |", "|---|---|---:|---:|"]
    notes = []
    for report, pts in zip(reports, (None, points)):
        label = f"capacity.toml grown to {pts:.0e} (tokens axis)" if pts else "capacity.toml"
        phases = report["phases"]
        for name, result in phases.items():
            rate = result["points_per_s"]
            shown = f"{rate / 1e6:,.2f} M" if rate >= 1e5 else f"{rate:,.0f}"
            worker = result.get("worker_peak_rss_mib") or math.nan
            rss = f"{result['peak_rss_mib']:,.0f} MiB" + ("" if math.isnan(worker) or name == "workers1"
                                                           else f" / {worker:,.0f} MiB")
            rows.append(f"| {label}, {result['points']:,} points | {bench_mod.LABELS[name]} | {shown} | {rss} |")
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
    """The seed notebook's measurements next to tsize's estimates for the models they belong to."""
    from tsize import catalog
    from tsize.api import size
    from tsize.model import from_mapping

    m = catalog.measurements()
    peak = m["seed-gpt2-peak-memory"]
    lines = ["| measurement (seed notebook) | measured | tsize | error |", "|---|---:|---:|---:|"]
    for b, mib in zip(peak["batch_size"], peak["values"]):
        est = size("gpt2", batch_size=b, seq_len=1024, precision="amp-bf16", attention="flash")["memory_peak_bytes"]
        lines.append(f"| gpt2 peak memory, flash, bf16, B={b}, T=1024 | {mib:,} MiB | {est / 2**20:,.0f} MiB | "
                     f"{est / (mib * 2**20) - 1:+.1%} |")
    ckpt = m["seed-gpt2-checkpoint"]
    model = from_mapping(dict(ckpt["model_fields"], name=ckpt["model"]))
    est = size(model, attention="naive", optimizer="adamw")["checkpoint_bytes"]
    lines.append(f"| checkpoint of GPT-2 124M (bias=False, mask buffers) | {ckpt['value']:,} B | {est:,.0f} B | "
                 f"{est / ckpt['value'] - 1:+.3%} |")
    it = m["seed-gpt2-iteration-time"]
    mfu = size("gpt2", batch_size=it["batch_size"][0], grad_accum=it["grad_accum"], iter_time_s=it["value"],
               seq_len=1024, gpu="nvidia_a100_40gb_sxm")["mfu"]
    lines.append(f"| MFU of gpt2, 20 x 5 sequences in {it['value']} s on an A100 | - | {mfu:.1%} | - |")
    return "\n".join(lines)


SECTIONS = {"outputs": outputs_table, "seed": seed_table, "inputs": inputs_table, "tiers": tiers_table, "commands": commands}


def _pattern(name: str) -> re.Pattern:
    return re.compile(rf"(<!-- BEGIN {name} -->\n)(.*?)(<!-- END {name} -->)", re.DOTALL)


def replace(text: str, name: str, body: str) -> str:
    if not _pattern(name).search(text):
        raise TsizeError(f"README has no '<!-- BEGIN {name} -->' ... '<!-- END {name} -->' section")
    return _pattern(name).sub(lambda m: m.group(1) + body.rstrip("\n") + "\n" + m.group(3), text)


def section(text: str, name: str) -> str:
    match = _pattern(name).search(text)
    if not match:
        raise TsizeError(f"README has no '{name}' section")
    return match.group(2).rstrip("\n")


def update(*, with_accuracy: bool = False, with_bench: bool = False, points: float | None = None,
           path: Path = README) -> list[str]:
    text = path.read_text()
    done = []
    for name, make in SECTIONS.items():
        text = replace(text, name, make())
        done.append(name)
    if with_accuracy:
        text = replace(text, "accuracy", accuracy())
        done.append("accuracy")
    if with_bench:
        text = replace(text, "bench", bench(points))
        done.append("bench")
    path.write_text(text)
    return done
