"""The meta-table catalogue (empty on the simulator)."""


def download_metatable_data():
    """Nothing to download: the simulator has no meta tables."""


def get_metatable_config(table):
    return {}


def get_metatable_list():
    return {}


def get_metatable_info(table):
    return {}


def get_metatable_fields(table):
    import pandas as pd

    return pd.DataFrame()
