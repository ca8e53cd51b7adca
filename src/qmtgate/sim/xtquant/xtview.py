"""xtquant.xtview: drives the QMT client's windows (views, charts, schedules).

Not simulated: the simulator has no client UI. Every call is accepted and recorded in ``_requests``
(for tests and debugging) and returns None; the schedule functions keep their schedules in memory so
``query_schedule_task`` answers what was added.
"""

from . import xtbson as _BSON_  # noqa: F401  (as the real module)

_requests: list = []
_schedules: dict = {}


def connect(ip="", port=None, remember_if_success=True):
    from .xtdata import connect as _connect

    return _connect(ip, port, remember_if_success)


def reconnect(ip="", port=None, remember_if_success=True):
    from .xtdata import reconnect as _reconnect

    return _reconnect(ip, port, remember_if_success)


def get_client():
    from .xtdata import get_client as _get_client

    return _get_client()


def try_except(func):
    from ._xtdata_more import try_except as _te

    return _te(func)


def _BSON_call_common(interface, func, param):
    _requests.append((func, param))
    return {}


def create_view(viewID, view_type, title, group_id):
    _requests.append(("create_view", viewID, view_type, title, group_id))


def close_view(viewID):
    _requests.append(("close_view", viewID))


def push_view_data(viewID, datas):
    _requests.append(("push_view_data", viewID, datas))


def switch_graph_view(stock_code=None, period=None, dividendtype=None, graphtype=None):
    _requests.append(("switch_graph_view", stock_code, period, dividendtype, graphtype))


def add_schedule(
    schedule_name, begin_time="", finish_time="", interval=60, run=False, only_work_date=False, always_run=False
):  # fmt: skip
    _schedules[schedule_name] = {
        "begin_time": begin_time, "finish_time": finish_time, "interval": interval, "run": run,
        "only_work_date": only_work_date, "always_run": always_run, "tasks": [],
    }  # fmt: skip


def add_schedule_download_task(
    schedule_name, stock_code=[], period="", recentday=0, start_time="", end_time="", incrementally=False
):  # fmt: skip
    tasks = _schedules.setdefault(schedule_name, {"tasks": []})["tasks"]
    tasks.append(
        {"stock_code": list(stock_code), "period": period, "recentday": recentday,
         "start_time": start_time, "end_time": end_time, "incrementally": incrementally}
    )  # fmt: skip


def modify_schedule_task(
    schedule_name, begin_time="", finish_time="", interval=60, run=False, only_work_date=False, always_run=False
):  # fmt: skip
    tasks = _schedules.get(schedule_name, {}).get("tasks", [])
    add_schedule(schedule_name, begin_time, finish_time, interval, run, only_work_date, always_run)
    _schedules[schedule_name]["tasks"] = tasks


def remove_schedule(schedule_name):
    _schedules.pop(schedule_name, None)


def remove_schedule_download_task(schedule_name, task_id):
    tasks = _schedules.get(schedule_name, {}).get("tasks", [])
    if 0 <= int(task_id) < len(tasks):
        tasks.pop(int(task_id))


def query_schedule_task():
    return {name: dict(entry) for name, entry in _schedules.items()}


def push_xtview_data(data_type, time, datas):
    _requests.append(("push_xtview_data", data_type, time, datas))


class UIPanel:
    """A chart panel description (the real class's fields)."""

    def __init__(self, code, period="1d", figures=[], startX=-1, startY=-1, width=-1, height=-1):
        self.code = code
        self.period = period
        self.figures = figures
        self.startX = startX
        self.startY = startY
        self.width = width
        self.height = height


def apply_ui_panel_control(info):
    _requests.append(("apply_ui_panel_control", list(info)))
