"""xtquant.metatable: QMT's meta-table (tabular data) catalogue. The simulated market publishes no
meta tables: the catalogue is empty and the queries answer as the real ones do for unknown tables."""

from . import get_arrow, get_bson  # noqa: F401  (the real package's names)
from .meta_config import (  # noqa: F401
    download_metatable_data,
    get_metatable_config,
    get_metatable_fields,
    get_metatable_info,
    get_metatable_list,
)

get_tabular_data = get_arrow.get_tabular_fe_data
get_tabular_bson = get_arrow.get_tabular_fe_bson
