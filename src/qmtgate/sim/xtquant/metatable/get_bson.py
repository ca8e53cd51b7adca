"""Tabular queries in BSON form: empty on the simulator, which publishes no meta tables."""


def parse_request_from_fields(fields):
    """Split 'table.field' names into {table: [fields]} (the request shape the real code builds)."""
    out: dict = {}
    for name in fields:
        table, _, field = str(name).partition(".")
        out.setdefault(table, [])
        if field:
            out[table].append(field)
    return out


def get_tabular_data(codes, fields, period, start_time, end_time, count=-1, **kwargs):
    import pandas as pd

    return pd.DataFrame()


def get_tabular_bson_head(fields):
    return {"modelName": "", "tableNameCn": "", "fields": []}


def get_tabular_bson(codes, fields, period, start_time, end_time, count=-1, **kwargs):
    return []
