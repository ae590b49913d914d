"""The rings, enforced: import-linter's contracts (pyproject.toml, [tool.importlinter]) hold, cover every
module, and fail when a module breaks one."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "engine" / "tsize"
CONFIG = ROOT / "pyproject.toml"
CONTRACTS = {c["id"]: c for c in tomllib.loads(CONFIG.read_text())["tool"]["importlinter"]["contracts"]}


def lint_imports(path: Path = ROOT / "engine") -> subprocess.CompletedProcess:
    """``lint-imports`` with this project's contracts on the package found first on ``path``."""
    exe = Path(sys.executable).parent / "lint-imports"
    found = str(exe) if exe.exists() else shutil.which("lint-imports")
    assert found, "import-linter is part of the test extra: pip install -e '.[test]'"
    command = [found]
    env = dict(os.environ, PYTHONPATH=str(path))
    return subprocess.run(command + ["--no-cache", str(CONFIG)], capture_output=True, text=True,
                          env=env, cwd=path)


def test_contracts_hold():
    result = lint_imports()
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Contracts: {len(CONTRACTS)} kept, 0 broken." in result.stdout


def _top_level_modules() -> set[str]:
    return {f"tsize.{p.stem if p.is_file() else p.name}" for p in PACKAGE.iterdir()
            if (p.suffix == ".py" and p.stem != "__init__") or (p.is_dir() and (p / "__init__.py").exists())}


def test_contracts_name_every_module():
    """A new module must take its place in the rings: the layers, and what formulas and cli may not import."""
    modules = _top_level_modules()
    layered = {f"tsize.{m.strip()}" for layer in CONTRACTS["layers"]["layers"] for m in layer.split("|")}
    assert layered == modules
    assert modules - set(CONTRACTS["formulas-pure"]["forbidden_modules"]) == {"tsize.formulas"}
    # the command line may import the api and the error type, nothing else of tsize (its version: api.__version__)
    assert modules - set(CONTRACTS["cli-on-api"]["forbidden_modules"]) == {"tsize.api", "tsize.errors", "tsize.cli"}
    assert {"polars", "duckdb", "altair", "torch", "pyarrow", "rich"} <= set(CONTRACTS["formulas-pure"][
        "forbidden_modules"])


#: contract id: ({module: line appended to it}, what lint-imports must say)
VIOLATIONS = {
    "formulas-pure": ({"formulas/params.py": "import polars"}, "tsize.formulas is not allowed to import polars"),
    "formulas-pure:tsize": ({"formulas/memory.py": "from tsize.errors import TsizeError"},
                            "tsize.formulas is not allowed to import tsize.errors"),
    "cli-on-api": ({"cli/report.py": "from tsize import registry"},
                   "tsize.cli is not allowed to import tsize.registry"),
    "machinery-no-formulas": ({"store.py": "from tsize.formulas import memory"},
                              "tsize.store is not allowed to import tsize.formulas"),
    "layers": ({"grid.py": "from tsize import api"}, "tsize.grid is not allowed to import tsize.api"),
    "acyclic": ({"formulas/params.py": "from tsize.formulas import training",
                 "formulas/training.py": "from tsize.formulas import params"},
                "No cycles are allowed in tsize.formulas"),
}


@pytest.mark.parametrize("contract", sorted(VIOLATIONS))
def test_a_deliberate_violation_fails(tmp_path, contract):
    shutil.copytree(PACKAGE, tmp_path / "tsize", ignore=shutil.ignore_patterns("__pycache__"))
    lines, message = VIOLATIONS[contract]
    for module, line in lines.items():
        with open(tmp_path / "tsize" / module, "a") as f:
            f.write(f"\n{line}  # deliberate violation\n")
    result = lint_imports(tmp_path)
    assert result.returncode == 1, result.stdout
    assert re.search(r"Contracts: \d+ kept, [1-9]\d* broken\.", result.stdout)
    assert message in result.stdout
