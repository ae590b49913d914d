"""The docs against the code: generated sections current, example queries run, commands documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from tsize import spec as spec_mod
from tsize import store
from tsize.cli import docs
from tsize.cli.main import build_parser
from tsize.registry import INPUT_NAMES, OUTPUT_NAMES

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
REFERENCE = (ROOT / "docs" / "reference.md").read_text()
SECTIONS = [(path, name, make) for path, made in docs.sections(build_parser()).items() for name, make in made.items()]


@pytest.mark.parametrize("path,name,make", SECTIONS, ids=[f"{p.name}:{n}" for p, n, _ in SECTIONS])
def test_generated_sections_are_current(path, name, make):
    assert docs.section(path.read_text(), name) == make().rstrip("\n"), "run: tsize docs"


def test_reference_tables_live_in_docs_not_readme():
    for name in ("outputs", "inputs", "tiers", "commands"):
        assert f"<!-- BEGIN {name} -->" in REFERENCE and f"<!-- BEGIN {name} -->" not in README
    assert "docs/reference.md" in README


def test_outputs_table_lists_the_registry_both_ways():
    listed = re.findall(r"^\| `(\w+)` \|", docs.section(REFERENCE, "outputs"), re.MULTILINE)
    assert listed == list(OUTPUT_NAMES)
    inputs = re.findall(r"^\| `(\w+)` \|", docs.section(REFERENCE, "inputs"), re.MULTILINE)
    assert inputs == list(INPUT_NAMES)


def test_every_command_and_option_is_documented():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    reference = docs.section(REFERENCE, "commands")
    for name, command in sub.choices.items():
        assert f"**`tsize {name}`**" in reference
        for action in command._actions:
            for flag in action.option_strings:
                if flag not in ("-h", "--help"):
                    assert f"`{flag}`" in reference or f"{flag}," in reference or f", {flag}`" in reference, \
                        (name, flag)


def test_update_says_what_changed(tmp_path):
    readme, reference = tmp_path / "README.md", tmp_path / "reference.md"
    readme.write_text(README)
    reference.write_text(REFERENCE.replace("| `params_total` |", "| `params_tota` |"))
    assert docs.update(build_parser(), readme=readme, reference=reference) == {
        str(readme): [], str(reference): ["outputs"]}
    assert reference.read_text() == REFERENCE and readme.read_text() == README
    assert docs.update(build_parser(), readme=readme, reference=reference) == {str(readme): [], str(reference): []}


def test_quick_start_has_two_commands():
    quick = README.split("## Quick start", 1)[1].split("Then, for example", 1)[0]
    commands = re.findall(r"```bash\n(.+?)\n```", quick)
    assert len(commands) == 2
    assert "tsize sweep sweeps/seed.toml" in commands[0]
    assert "pytest" in commands[1] and "torch==2.13.0" in commands[1]
    ci = (ROOT / ".ci" / "run").read_text()
    for command in commands:
        assert command in ci  # CI runs exactly what the README says


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = tmp_path_factory.mktemp("readme") / "t.duckdb"
    for name in ("seed", "fleet", "serving"):
        store.write(spec_mod.load(ROOT / "sweeps" / f"{name}.toml"), path=path, progress=False)
    return path


SQL_EXAMPLES = re.findall(r"```sql\n(.+?)```", README, re.DOTALL)


def test_there_are_sql_examples():
    assert len(SQL_EXAMPLES) >= 3


@pytest.mark.parametrize("sql", SQL_EXAMPLES, ids=lambda s: s.splitlines()[0][3:60])
def test_readme_queries_answer(db, sql):
    frame = store.query(sql, path=db)
    assert frame.height > 0


def test_largest_batch_query_agrees_with_size(db):
    frame = store.query(SQL_EXAMPLES[0], path=db)
    row = frame.filter((frame["model"] == "gpt2-xl") & (frame["gpu"] == "nvidia_a100_40gb_sxm")).row(0, named=True)
    from tsize.api import size

    assert size("gpt2-xl", batch_size=row["largest_batch"], gpu="nvidia_a100_40gb_sxm", n_gpus=8)["fits"]
    assert row["largest_batch"] == 32 or not size("gpt2-xl", batch_size=row["largest_batch"] * 2,
                                                  gpu="nvidia_a100_40gb_sxm", n_gpus=8)["fits"]


PATH_MENTION = re.compile(r"(?<![\w/.])((?:tests|engine|tsize|catalogs|sweeps|docs)/[\w./-]+\.(?:py|toml|md|png))")


def _mentions():
    sources = [ROOT / "README.md", ROOT / "docs" / "reference.md", *sorted((ROOT / "engine").rglob("*.py"))]
    for source in sources:
        for path in PATH_MENTION.findall(source.read_text()):
            yield source.relative_to(ROOT), path


@pytest.mark.parametrize("source,path", sorted(set(_mentions())), ids=lambda v: str(v))
def test_mentioned_paths_exist(source, path):
    """No stale references: every file a docstring, the README or the reference names exists."""
    candidates = [ROOT / path, ROOT / "engine" / path]  # "tsize/..." is short for engine/tsize/...
    assert any(c.exists() for c in candidates), f"{source} names {path}"
