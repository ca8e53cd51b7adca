"""The pinned mmap threshold: freed large buffers go back to the OS even after glibc's dynamic threshold
would have moved them onto the heap (see qmtgate.ops.allocator)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from qmtgate.ops.allocator import pin_mmap_threshold

GLIBC = sys.platform.startswith("linux") and "glibc" in " ".join(__import__("platform").libc_ver())

PROBE = textwrap.dedent(
    """
    import sys
    import numpy as np
    from qmtgate.ops.allocator import pin_mmap_threshold

    def rss_mb():
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024

    if sys.argv[1] == "pinned":
        assert pin_mmap_threshold()  # the gateway's default (4 MiB): below a segment array's ~14 MB
    np.ones(8 << 20, np.uint8)  # one 8 MB block mmapped and freed: glibc raises its threshold past 8 MB
    blocks = [np.ones(8 << 20, np.uint8) for _ in range(25)]  # 200 MB, touched
    keep = np.ones(64 << 10, np.uint8)  # a small heap block allocated after them stays alive
    before = rss_mb()
    del blocks
    print(before - rss_mb())
    """
)


def _released(mode: str) -> float:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, timeout=60, check=True
    )
    return float(done.stdout.split()[-1])


@pytest.mark.skipif(not GLIBC, reason="glibc's mmap threshold; a no-op elsewhere")
def test_pinned_threshold_returns_freed_blocks_to_the_os() -> None:
    assert _released("dynamic") < 50  # the 200 MB stay in the heap below a live block
    assert _released("pinned") > 190  # each block was its own mapping, unmapped on free


def test_pin_is_a_no_op_off_glibc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "win32")
    assert pin_mmap_threshold() is False
