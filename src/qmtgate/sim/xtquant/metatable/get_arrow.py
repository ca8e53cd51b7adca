"""Tabular (meta-table) queries: empty on the simulator, which publishes no meta tables."""


def get_tabular_fe_data(codes, fields, period, start_time, end_time, count=-1, **kwargs):
    import pandas as pd

    return pd.DataFrame()


def get_tabular_fe_bson(codes, fields, period, start_time, end_time, count=-1, **kwargs):
    return []
