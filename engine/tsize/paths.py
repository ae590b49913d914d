"""Files a user names: checked to be regular files and read as UTF-8, with one-line errors.

A directory, a device (``/dev/null``), a pipe or a binary file given where a
spec, a model file or a query file is expected is reported as what it is,
not as "not found".
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from tsize.errors import TsizeError


def regular_file(path: str | Path, what: str) -> Path:
    """``path`` as a Path when it names a regular file; TsizeError saying what it is otherwise."""
    p = Path(path)
    if not p.exists():
        raise TsizeError(f"{what} {str(p)!r} not found")
    if p.is_dir():
        raise TsizeError(f"{what} {str(p)!r} is a directory; give a file")
    if not p.is_file():
        raise TsizeError(f"{what} {str(p)!r} is not a regular file (a device or a pipe); give a file")
    return p


def read_text(path: str | Path, what: str) -> str:
    """The UTF-8 text of a regular file (see :func:`regular_file`)."""
    p = regular_file(path, what)
    try:
        return p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise TsizeError(f"{what} {str(p)!r} is not UTF-8 text (bad byte at offset {exc.start})") from None


def read_toml(path: str | Path, what: str) -> tuple[dict[str, Any], str]:
    """A regular UTF-8 TOML file, parsed, and its text; one-line TsizeError when it is not well-formed."""
    text = read_text(path, what)
    try:
        return tomllib.loads(text), text
    except RecursionError:
        raise TsizeError(f"{path}: malformed TOML: nested too deeply") from None
    except tomllib.TOMLDecodeError as exc:
        raise TsizeError(f"{path}: malformed TOML: {exc}") from None
