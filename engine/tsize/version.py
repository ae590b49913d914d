"""tsize's version, defined once: the package, the wheel (hatch reads this file) and every stored sweep use it."""

__version__ = "0.1.0"
