"""grid.pad_heap: the glibc heap pad that keeps box-sized arrays from page-faulting in again."""

import sys

import pytest
from tsize import grid


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_pad_heap_applies_on_linux_glibc():
    import platform

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("not glibc")
    assert grid.pad_heap() is True


def test_pad_heap_is_harmless_to_call_twice():
    assert grid.pad_heap() == grid.pad_heap()
