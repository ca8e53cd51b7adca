"""xtquant.xtextend: reads QMT "extended data" files (``<datadir>/EP/<name>_Xdat``: a JSON ``config``
with the stock and date lists, and a ``data`` file of float32 values + int16 ranks per date).

The simulator produces no extended data, so ``show_extend_data`` finds no such file and answers
"No such file", as the real one does for a missing file; files written in that format are read.
"""

import json as _json
import os as _os
import struct as _struct
import time as _time


class FileLock:
    """The real module's lock file: a file held open while reading (``is_lock``: someone holds it)."""

    def __init__(this, path, auto_lock=False):
        this.path = path
        this.fhandle = None
        if auto_lock:
            this.lock()

    def is_lock(this):
        if _os.path.exists(this.path):
            try:
                _os.remove(this.path)
                return False
            except Exception:
                return True
        return False

    def lock(this):
        if this.fhandle:
            raise RuntimeError(f"{this.path} is already locked")
        try:
            this.fhandle = open(this.path, "w")  # noqa: SIM115  (held until unlock)
        except Exception:
            return False
        return True

    def unlock(this):
        if not this.fhandle:
            raise RuntimeError(f"{this.path} is not locked")
        this.fhandle.close()
        this.fhandle = None
        return True

    def clean(this):
        try:
            if _os.path.isfile(this.path):
                _os.remove(this.path)
            return not _os.path.exists(this.path)
        except Exception:
            return False


class Extender:
    """Reader of one data directory's extended data (``base_dir``/EP)."""

    def __init__(self, base_dir):
        self.base_dir = _os.path.join(base_dir, "EP")

    def read_config(self):
        with open(_os.path.join(self.file, "config"), encoding="utf-8") as f:
            data = _json.load(f)
        if data:
            listed = data["stocklist"]
            self.stocklist = [f"{s}.{listed[i - 1]}" for i in range(1, len(listed), 2) for s in listed[i]]
            self.timedatelist = data["tradedatelist"]

    def read_data(self, data, time_indexs, stock_length):
        per_date = 6 * stock_length  # float32 value + int16 rank per stock
        res = {}
        for t in time_indexs:
            base = per_date * t
            values = _struct.unpack_from(f"<{stock_length}f", data, base)
            ranks = _struct.unpack_from(f"<{stock_length}h", data, base + 4 * stock_length)
            res[self.timedatelist[t]] = [(round(v, 3), r) for v, r in zip(values, ranks, strict=True)]
        return res

    def format_time(self, times):
        if isinstance(times, str):
            return int(_time.mktime(_time.strptime(times, "%Y%m%d"))) * 1000
        if isinstance(times, int):
            if times < 0:
                return self.timedatelist[times]
            return times * 1000 if times < (1 << 31) - 1 else times
        return times

    def show_extend_data(self, file, times):
        self.file = _os.path.join(self.base_dir, file + "_Xdat")
        if not _os.path.isdir(self.file):
            return "No such file"
        self.read_config()
        if not times:
            wanted = list(self.timedatelist)
        elif isinstance(times, list):
            wanted = [self.format_time(t) for t in times]
        else:
            wanted = [self.format_time(times)]
        index = [self.timedatelist.index(t) for t in wanted if t in self.timedatelist]
        with open(_os.path.join(self.file, "data"), "rb") as f:
            data = f.read()
        return self.stocklist, self.read_data(data, index, len(self.stocklist))


def show_extend_data(file, times):
    """Extended data of the simulator's data directory (see the module docstring)."""
    from . import _env

    base = _env.current().data_dir
    if base is None:
        return "No such file"
    return Extender(str(base)).show_extend_data(file, times)
