"""``tsize bench``: speed and memory, measured the way users run tsize.

Phases, each in a fresh Python process so its peak memory is its own:

* ``evaluate``: every column of the long-form frame (inputs and all
  outputs of the registry) for every grid point, into reused buffers;
* ``store``: ``tsize sweep`` end to end into a new DuckDB file;
* ``scalar``: the same formulas called once per grid point with scalar
  inputs (plain Python loop, the seed's and peers' style), on a sample.

The grid is ``sweeps/capacity.toml`` (10.6 million points) unless another
spec is given; ``--points`` repeats its ``tokens`` axis to reach a size.
"""

from __future__ import annotations

import json
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tsize.errors import TsizeError

DEFAULT_SPEC = Path(__file__).resolve().parents[3] / "sweeps" / "capacity.toml"
LABELS = {"evaluate": "evaluation: every column of the long-form frame (numpy)",
          "store": "end to end into a DuckDB file (tsize sweep)",
          "scalar": "plain Python loop over the same formulas, one point at a time"}


def _spec(path: str, points: float | None):
    from tsize.spec import load

    spec = load(path)
    if points:
        size = spec.grid().size
        copies = max(1, math.ceil(points / size))
        spec.axes["tokens"] = [float(t) for t in (1e12 * (1 + i) for i in range(copies))]
        spec.name = f"{spec.name}-bench"
    return spec


def _peak_rss_mib() -> float:
    """This process's peak resident memory [MiB]: VmHWM where /proc has it (ru_maxrss is inherited
    from the parent across fork and exec on Linux, so a busy parent would show through)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    scale = 1024 if sys.platform != "darwin" else 1024 * 1024  # ru_maxrss: KiB on Linux, bytes on macOS
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


def phase(name: str, spec_path: str, points: float | None, sample: int) -> dict:
    import numpy as np

    from tsize import frames as sweep
    from tsize import store
    from tsize.point import point as one_point  # noqa: F401  (imports shared by every phase)
    from tsize.grid import Grid

    spec = _spec(spec_path, points)
    grid = spec.grid()
    if name == "evaluate":
        arrays = {n: np.empty(sweep.CHUNK_POINTS, dtype=t) for n, t in sweep.columns()}
        started = time.perf_counter()
        done = 0
        for box in grid.boxes(sweep.CHUNK_POINTS):
            done += sweep.fill(grid, box, arrays)
        seconds = time.perf_counter() - started
        return {"points": done, "seconds": seconds, "columns": len(arrays)}
    if name == "store":
        with tempfile.TemporaryDirectory() as tmp:
            db = Path(tmp) / "bench.duckdb"
            result = store.write(spec, path=db, progress=False)
            size = db.stat().st_size
        return {"points": result["points"], "seconds": result["seconds"], "file_bytes": size}
    if name == "scalar":
        rng = np.random.default_rng(0)
        flat = rng.choice(grid.size, size=min(sample, grid.size), replace=False)
        indices = [np.unravel_index(i, grid.shape) for i in flat]
        started = time.perf_counter()
        for index in indices:
            Grid.evaluate(grid, tuple((int(i), int(i) + 1) for i in index))
        seconds = time.perf_counter() - started
        return {"points": len(indices), "seconds": seconds}
    raise TsizeError(f"unknown phase {name!r}; valid: evaluate, store, scalar")


def run(spec_path: str | None = None, *, points: float | None = None, sample: int = 2000,
        phases: tuple[str, ...] = ("evaluate", "store", "scalar")) -> dict:
    spec_path = str(spec_path or DEFAULT_SPEC)
    report = {"spec": spec_path, "python": platform.python_version(), "cpus": os.cpu_count(),
              "machine": platform.machine(), "phases": {}}
    for name in phases:
        out = subprocess.run([sys.executable, "-m", "tsize.validation.bench", "--phase", name, "--spec", spec_path,
                              "--points", str(points or 0), "--sample", str(sample)],
                             capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(f"benchmark phase {name} failed: {out.stderr.strip().splitlines()[-1]}")
        report["phases"][name] = json.loads(out.stdout)
    return report


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--phase", required=True)
    parser.add_argument("--spec", required=True)
    parser.add_argument("--points", type=float, default=0)
    parser.add_argument("--sample", type=int, default=2000)
    args = parser.parse_args()
    result = phase(args.phase, args.spec, args.points or None, args.sample)
    result["points_per_s"] = result["points"] / result["seconds"]
    result["peak_rss_mib"] = _peak_rss_mib()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
