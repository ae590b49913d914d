"""The registry's input checks: finite, bounded numbers (issue 10: bounds, not wraps)."""

from __future__ import annotations

import math

import pytest
from tsize.api import size
from tsize.registry import INPUTS, input_


@pytest.mark.parametrize("name", [i.name for i in INPUTS if i.kind in ("int", "float") and not i.choices])
def test_every_number_input_has_an_upper_bound_and_refuses_infinity(name):
    spec = input_(name)
    assert spec.maximum is not None and math.isfinite(spec.maximum)
    with pytest.raises(ValueError, match=rf"^{name} inf is not a finite number; valid: "):
        spec.check(math.inf)
    with pytest.raises(ValueError, match=rf"^{name} -inf is not a finite number; valid: "):
        spec.check(-math.inf)
    beyond = spec.maximum * 2 + 1
    with pytest.raises(ValueError, match=rf"^{name} .* is out of range; valid: .*<= "):
        spec.check(int(beyond) if spec.kind == "int" else beyond)
    assert spec.check(spec.maximum) == spec.maximum


def test_nan_only_where_the_registry_says_not_measured():
    assert math.isnan(input_("iter_time_s").check(math.nan))
    for name in ("tokens", "pue", "usd_per_kwh", "dropout_mask_bytes", "allocator_slack", "overhead_bytes",
                 "batch_size", "tp", "pp"):
        with pytest.raises(ValueError, match=rf"^{name} nan is not a finite number"):
            input_(name).check(math.nan)


@pytest.mark.parametrize("name,value,message", [
    ("tp", 1e30, r"tp 1e\+30 is out of range; valid: >= 1 and <= 1048576"),  # "Python int too large" before
    ("pp", math.inf, r"pp inf is not a finite number; valid: >= 1 and <= 1048576"),  # "cannot convert infinity"
    ("batch_size", 9223372036854775808, r"batch_size 9223372036854775808 is out of range; valid: >= 1 and "
                                        r"<= 4294967296"),
    ("gpu", {"a": 1}, r"gpu must be a catalog id \(text\), got \{'a': 1\}"),  # "unhashable type" before
    ("precision", [[1, 2]], r"precision must be a catalog id \(text\), got \[\[1, 2\]\]"),
    ("batch_size", 1.5, r"batch_size must be an integer, got 1\.5"),
    ("batch_size", True, r"batch_size must be a number, got True"),
])
def test_hostile_values(name, value, message):
    with pytest.raises(ValueError, match=message):
        input_(name).check(value)


def test_iteration_time_infinity_is_refused():
    """Issue 10: --iter-time inf printed 'in inf s'."""
    with pytest.raises(ValueError, match=r"iter_time_s inf is not a finite number"):
        size("gpt2", iter_time_s=math.inf)
