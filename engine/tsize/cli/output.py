"""Writing query results: a table on the terminal, CSV, JSON or Parquet, for every DuckDB type.

The frame arrives already converted for its format by :func:`tsize.store.query` (``form=``): in CSV and
tables every non-numeric, non-text column is DuckDB's text for it; in JSON each row is DuckDB's JSON object
(``to_json``), with NaN and infinities written as null. ``--output`` never overwrites
the store it reads, nor any existing file unless ``--force`` is given.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from tsize.errors import TsizeError


def check_output(output: str | Path, *, store: Path | None, force: bool) -> Path:
    """The path to write, after refusing the store file (and its WAL) always and an existing file without force."""
    path = Path(output)
    if path.is_dir():
        raise TsizeError(f"--output {path} is a directory; give a file name")
    if store is not None:
        for protected in (store, store.with_name(store.name + ".wal")):
            if protected.exists() and path.exists() and os.path.samefile(path, protected):
                raise TsizeError(f"--output {path} is the results database being read; give another file")
            if path.resolve() == protected.resolve():
                raise TsizeError(f"--output {path} is the results database being read; give another file")
    if path.exists() and not force:
        raise TsizeError(f"--output {path} exists; give --force to overwrite it, or another file")
    if path.exists() and not path.is_file():
        raise TsizeError(f"--output {path} is not a regular file; give a file name")
    return path


def json_text(frame) -> str:
    """A JSON array of the rows of a ``form="json"`` frame (one column of JSON object texts)."""
    return "[" + ",\n".join(frame.get_column("json").to_list()) + "]\n" if frame.width else "[]\n"


def write_frame(frame, fmt_name: str, output: str | None, *, title: str | None, console, max_rows: int = 200,
                store: Path | None = None, force: bool = False) -> None:
    """Print or save a Polars frame as a table, CSV, JSON or Parquet."""
    if fmt_name == "parquet" and not output:
        raise TsizeError("--format parquet needs --output FILE")
    if fmt_name == "json":
        text = json_text(frame)
    if output:
        path = check_output(output, store=store, force=force)
        path.parent.mkdir(parents=True, exist_ok=True)
        if fmt_name == "json":
            path.write_text(text)
        elif fmt_name == "parquet":
            frame.write_parquet(path)
        else:
            frame.write_csv(path)
        print(f"{frame.height:,} rows -> {output}", file=sys.stderr)
        return
    if fmt_name == "csv":
        sys.stdout.write(frame.write_csv())
    elif fmt_name == "json":
        sys.stdout.write(text)
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
