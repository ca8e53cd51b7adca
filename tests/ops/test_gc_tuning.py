"""The start-up freeze: objects alive at start-up leave the collector's generations, young GCs get rarer."""

from __future__ import annotations

import gc

from qmtgate.ops.gc_tuning import GEN0_THRESHOLD, freeze_startup_objects


def test_freeze_moves_live_objects_to_the_permanent_generation() -> None:
    before = gc.get_threshold()
    keep = [[i] for i in range(10_000)]  # tracked objects that outlive start-up
    try:
        frozen, seconds = freeze_startup_objects()
        assert frozen >= len(keep) and seconds >= 0
        assert gc.get_threshold()[0] == GEN0_THRESHOLD
        assert not any(gc.get_objects(generation=2)) or len(gc.get_objects(generation=2)) < frozen
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
