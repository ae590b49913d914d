"""Collection rules for the whole repository: the package's docstring examples run as doctests; the modules
that build real PyTorch models are left out when PyTorch is not installed (their tests skip with the reason)."""

import importlib.util

collect_ignore = [] if importlib.util.find_spec("torch") else [
    "engine/tsize/validation/measure.py", "engine/tsize/validation/validate.py"]
