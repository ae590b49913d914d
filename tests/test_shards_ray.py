"""Sharded sweeps as Ray tasks on a real local Ray instance with 2 CPUs: the same bytes as one process."""

from __future__ import annotations

from pathlib import Path

import pytest
from tsize import api

ray = pytest.importorskip("ray", reason="the test extra installs Ray: pip install -e '.[test]'")

SMALL = {"name": "small", "models": ["gpt2", "llama-3-8b"],
         "grid": {"batch_size": [1, 8], "gpu": ["nvidia_h100_sxm", "nvidia_l4"], "n_gpus": [1, 8],
                  "zero_stage": [0, 3], "precision": ["amp-bf16", "fp32"]}}
CHECKSUM = "SELECT count(*) AS n, sum(hash(r)) AS h FROM (SELECT * EXCLUDE (sweep_id) FROM results) r"


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def test_ray_sweep_gives_the_same_bytes_as_one_process(tmp_path: Path, local_ray):
    reference = tmp_path / "ref.duckdb"
    api.sweep(SMALL, path=reference, workers=1, progress=False)
    expected = api.query(CHECKSUM, path=reference).row(0)
    db = tmp_path / "ray.duckdb"
    out = api.sweep(SMALL, path=db, ray=True, shard_points=7, progress=False)
    # trailing axes n_gpus 2 x zero_stage 2 = 4 points fit in 7 (x gpu 2 = 8 do not): 64 / 4 = 16 shards
    assert out["points"] == 64 and out["shards"] == 16
    assert api.query(CHECKSUM, path=db).row(0) == expected
    ds = tmp_path / "ds"
    api.sweep(SMALL, format="parquet", output=ds, ray=True, shard_points=7, progress=False)
    assert api.query(CHECKSUM, path=ds).row(0) == expected
    assert ray.is_initialized()  # a Ray instance tsize did not start is left running
