"""xtquant.xtutil: BSON buffer helpers (as the real module, over xtbson) and feather helpers."""

import contextlib as _contextlib
import struct as _struct

from . import xtbson as _BSON_


def read_from_bson_buffer(buffer):
    """Decode concatenated BSON documents; undecodable ones are skipped, as the real helper does."""
    result = []
    pos = 0
    while pos + 4 < len(buffer):
        (dlen,) = _struct.unpack_from("<i", buffer, pos)
        if dlen < 5:
            break
        with _contextlib.suppress(Exception):  # as the real helper: skip undecodable documents
            result.append(_BSON_.decode(bytes(buffer[pos : pos + dlen])))
        pos += dlen
    return result


def write_to_bson_buffer(data_list):
    return b"".join(_BSON_.encode(data) for data in data_list)


def read_from_feather_file(file):
    import pyarrow.feather as feather

    return {}, feather.read_table(file).to_pandas()


def write_to_feather_file(data, file, meta=None):
    """The real helper writes nothing (its body is a stub returning None); so does this one."""
    return None
