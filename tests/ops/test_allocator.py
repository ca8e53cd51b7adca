"""The pinned mmap threshold: freed large buffers go back to the OS even after glibc's dynamic threshold
would have moved them onto the heap (see qmtgate.ops.allocator)."""

from __future__ import annotations

import os
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


def test_serve_allocates_arrow_buffers_from_the_system_pool_unless_told_otherwise() -> None:
    """The console script's ``serve`` sets pyarrow's pool before pyarrow loads: every buffer, the IPC
    writer's and the codecs' too, comes from the C runtime's allocator; a pool the user chose stays."""
    probe = textwrap.dedent(
        """
        import os, sys
        from qmtgate.ops.allocator import prefer_system_arrow_pool
        assert "pyarrow" not in sys.modules
        print(prefer_system_arrow_pool())
        import pyarrow as pa
        table = pa.table({"x": list(range(10_000))})
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema, options=pa.ipc.IpcWriteOptions(compression="zstd")) as w:
            w.write_table(table)
        print(pa.default_memory_pool().backend_name)
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["system", "system"]
    chosen = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=120,
        env={**env, "ARROW_DEFAULT_MEMORY_POOL": "jemalloc"},
    )
    assert (
        chosen.stdout.split()[0] == "jemalloc"
    )  # the user's choice is kept (whether the wheel has it or not)
