"""The Python API (the single-point core now lives in ``tsize.point``; re-exported here)."""

from tsize.point import axes_for, fleet_options, fleets, json_safe, point, size  # noqa: F401
