"""Display formatting: the only place base units become GiB, GB, TFLOP/s or days.

Every function labels its unit, and memory is shown in both binary (GiB =
2^30 B) and decimal (GB = 10^9 B) units where confusion is likely.
"""

from __future__ import annotations

import math

GIB = 2**30
MIB = 2**20
GB = 1e9
DAY = 86400.0
HOUR = 3600.0


def _bad(x) -> bool:
    return x is None or (isinstance(x, float) and not math.isfinite(x))


def count(n) -> str:
    """An integer count with thousands separators."""
    return "-" if _bad(n) else f"{int(n):,}"


def gib(x, digits: int = 2) -> str:
    """Bytes as GiB (2^30)."""
    return "-" if _bad(x) else f"{x / GIB:,.{digits}f} GiB"


def gb(x, digits: int = 2) -> str:
    """Bytes as GB (10^9)."""
    return "-" if _bad(x) else f"{x / GB:,.{digits}f} GB"


def mib(x) -> str:
    return "-" if _bad(x) else f"{x / MIB:,.0f} MiB"


def both(x, digits: int = 2) -> str:
    """Bytes as ``GiB (GB)``."""
    return "-" if _bad(x) else f"{gib(x, digits)} ({gb(x, digits)})"


def flop(x) -> str:
    """FLOP in scientific notation."""
    return "-" if _bad(x) else f"{x:.4e} FLOP"


def tflops(x) -> str:
    """FLOP/s as TFLOP/s (10^12)."""
    return "-" if _bad(x) else f"{x / 1e12:,.1f} TFLOP/s"


def days(seconds) -> str:
    return "-" if _bad(seconds) else f"{seconds / DAY:,.2f} d"


def hours(seconds) -> str:
    return "-" if _bad(seconds) else f"{seconds / HOUR:,.0f} h"


def usd(x) -> str:
    if _bad(x):
        return "-"
    return f"${x:,.0f}" if abs(x) >= 100 else f"${x:,.2f}"


def pct(x, digits: int = 2) -> str:
    return "-" if _bad(x) else f"{100 * x:,.{digits}f} %"


def ratio(x) -> str:
    return "-" if _bad(x) else f"{x:.4f}"


def share(part, whole, digits: int = 2) -> str:
    """``part`` as a percentage of ``whole`` (a table's share column; display only)."""
    return "-" if _bad(part) or _bad(whole) or not whole else pct(part / whole, digits)


def ratio_of(a, b) -> str:
    """``a / b`` to four decimals (display only)."""
    return "-" if _bad(a) or _bad(b) or not b else ratio(a / b)


def mwh(joules) -> str:
    return "-" if _bad(joules) else f"{joules / 3.6e9:,.2f} MWh"


def console():
    """A rich console: the terminal's width, or 160 columns when output is piped (tables stay readable)."""
    from rich.console import Console

    probe = Console()
    return probe if probe.is_terminal else Console(width=160)
