"""``flatc --python --gen-onefile`` output of tests/hikyuu_feed/schema/spot.fbs (``make hikyuu-flatc``): the tests' own
decoder, generated separately from the publisher's (qmtgate.hikyuu.flat); do not edit."""
