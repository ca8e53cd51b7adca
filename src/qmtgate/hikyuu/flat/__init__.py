"""``flatc --python --gen-onefile`` output for Hikyuu's ``spot.fbs`` (``make hikyuu-flatc``); do not edit."""
