"""tsize: transformer sizing and GPU-fleet planning over whole grids.

The formulas live in small modules of pure numpy functions (``params``,
``flops``, ``activations``, ``memory``, ``parallel``, ``training``);
``evaluate`` composes them into the outputs declared in ``registry``.
"""

from tsize.version import __version__  # noqa: E402

from tsize.api import size  # noqa: E402

__all__ = ["size", "__version__"]
