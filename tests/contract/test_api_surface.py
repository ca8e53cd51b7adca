"""Contract: the simulated xtquant exposes only real xtquant 250807 names, with real signatures and values.

Why: code written against the real SDK must run unchanged on the simulator, and a call to a name or
keyword that the real SDK lacks must fail here, not on a trading PC. The reference is
tests/contract/data/xtquant_250807_api.json, extracted from the real wheel with `ast` by
tools/extract_xtquant_signatures.py (the real modules only import on Windows).

Every top-level module of the wheel (the extractor lists them; compiled-only `.pyd` parts are not
modules of their own) must exist in the simulated package with every public name of the real one:
`test_sim_has_every_real_public_name` is the "0 missing names" check. xtdata's functions must match the
real signatures; xttrader is complete too (calls the paper broker does not model raise
NotImplementedError naming themselves): see test (e).
"""

import ast
import importlib
import importlib.util
import inspect
import json
import math
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import qmtgate.sim

DATA_FILE = Path(__file__).parent / "data" / "xtquant_250807_api.json"
API: dict[str, Any] = json.loads(DATA_FILE.read_text(encoding="utf-8"))
SIM_PACKAGE = "qmtgate.sim.xtquant"
OPTIONAL_MODULES: tuple[str, ...] = ()  # modules a test may skip while the simulator lacks them
ALL_MODULES = tuple(sorted(API["modules"]))
REQUIRED_MODULES = tuple(m for m in ALL_MODULES if m not in OPTIONAL_MODULES)

# (name, kind, default); default is _NO_DEFAULT when the parameter has none.
Param = tuple[str, str, Any]
_NO_DEFAULT = object()


# --------------------------------------------------------------------------------------------------
# helpers


def load_sim(module: str) -> types.ModuleType:
    """Import a simulated module; optional ones that do not exist yet skip (a broken one still errors)."""
    name = f"{SIM_PACKAGE}.{module}"
    if module in OPTIONAL_MODULES and importlib.util.find_spec(name) is None:
        pytest.skip(f"{name} does not exist yet; its contract is checked once it is written")
    return importlib.import_module(name)


def decode(value: Any) -> Any:
    """Inverse of the extractor's `encode_value`: rebuild tagged containers and non-finite floats."""
    if isinstance(value, dict):
        ((tag, payload),) = value.items()
        if tag == "__list__":
            return [decode(v) for v in payload]
        if tag == "__tuple__":
            return tuple(decode(v) for v in payload)
        if tag == "__set__":
            return {decode(v) for v in payload}
        if tag == "__dict__":
            return {decode(k): decode(v) for k, v in payload}
        if tag == "__float__":
            return float(payload)
        if tag == "__bytes__":
            return bytes.fromhex(payload)
        raise ValueError(f"unknown tag {tag!r}")
    return value


def same_value(actual: Any, expected: Any) -> bool:
    """Equality that also requires equal types (True is not 1, 23.0 is not 23) and treats NaN == NaN."""
    if type(actual) is not type(expected):
        return False
    if isinstance(expected, float) and math.isnan(expected):
        return math.isnan(actual)
    if isinstance(expected, (list, tuple)):
        return len(actual) == len(expected) and all(map(same_value, actual, expected))
    if isinstance(expected, dict):
        return list(actual) == list(expected) and all(same_value(actual[k], expected[k]) for k in expected)
    if isinstance(expected, (set, frozenset)):
        return actual == expected and sorted(map(repr, actual)) == sorted(map(repr, expected))
    return actual == expected


_DEFAULT_CALLS: dict[str, Callable[..., Any]] = {"float": float, "int": int, "str": str, "tuple": tuple}


def eval_default(text: str) -> Any:
    """Value of a real default given as source text: a literal, or a call like float('nan')."""
    try:
        return ast.literal_eval(text)
    except ValueError:
        pass
    node = ast.parse(text, mode="eval").body
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _DEFAULT_CALLS:
        return _DEFAULT_CALLS[node.func.id](*(ast.literal_eval(a) for a in node.args))
    raise AssertionError(f"cannot evaluate real default {text!r}; extend eval_default")


def real_params(description: dict[str, Any]) -> list[Param]:
    return [
        (p["name"], p["kind"], eval_default(p["default"]) if "default" in p else _NO_DEFAULT)
        for p in description["params"]
    ]


def sim_params(func: Callable[..., Any]) -> list[Param]:
    return [
        (p.name, p.kind.name, _NO_DEFAULT if p.default is inspect.Parameter.empty else p.default)
        for p in inspect.signature(func).parameters.values()
    ]


def format_params(params: list[Param]) -> str:
    def one(name: str, kind: str, default: Any) -> str:
        prefix = {"VAR_POSITIONAL": "*", "VAR_KEYWORD": "**"}.get(kind, "")
        suffix = "" if default is _NO_DEFAULT else f"={default!r}"
        marker = {"POSITIONAL_ONLY": "/", "KEYWORD_ONLY": "kw:"}.get(kind, "")
        return f"{marker}{prefix}{name}{suffix}"

    return "(" + ", ".join(one(*p) for p in params) + ")"


def signature_mismatch(where: str, func: Callable[..., Any], description: dict[str, Any]) -> str | None:
    """Describe how `func` differs from the real signature (names, order, kinds, defaults), or None."""
    expected = real_params(description)
    actual = sim_params(func)
    same = len(actual) == len(expected) and all(
        a[:2] == e[:2] and (a[2] is e[2] if e[2] is _NO_DEFAULT else same_value(a[2], e[2]))
        for a, e in zip(actual, expected, strict=False)
    )
    if same:
        return None
    missing = [e[0] for e in expected if e[0] not in {a[0] for a in actual}]
    extra = [a[0] for a in actual if a[0] not in {e[0] for e in expected}]
    notes = (f" missing={missing}" if missing else "") + (f" extra={extra}" if extra else "")
    return f"{where}: sim {format_params(actual)} != real {format_params(expected)}{notes}"


def is_reexport(value: Any) -> bool:
    """True for modules and for classes/functions imported from outside qmtgate (`np`, `Any`, ...).

    Those are import plumbing, not part of the simulated surface; everything else a sim module binds
    publicly, including anything imported from qmtgate itself, must be a real xtquant name.
    """
    if isinstance(value, types.ModuleType):
        return True
    if inspect.isclass(value) or inspect.isroutine(value) or type(value).__module__ == "typing":
        return not str(getattr(value, "__module__", "")).startswith("qmtgate")
    return False


def public_names(module: types.ModuleType) -> dict[str, Any]:
    return {
        name: value
        for name, value in vars(module).items()
        if not name.startswith("_") and not is_reexport(value)
    }


def real_kind(module: str, name: str) -> str | None:
    """How the real module binds `name`: function, class, constant, import, or None if it does not.

    A "constant" without a literal value (`get_local_server_port = __dc.get_local_server_port`, a
    native function) is reported as "import": its kind cannot be read from the source.
    """
    real = API["modules"][module]
    if name in real["functions"] or name in real["aliases"]:
        return "function"
    if name in real["star_imports"]:
        return "module" if real["star_imports"][name]["kind"] == "module" else "function"
    if name in real["constants"] and "value" not in real["constants"][name]:
        return "import"
    for kind, key in (("class", "classes"), ("constant", "constants"), ("import", "imports")):
        if name in real[key]:
            return kind
    if name in (real["all"] or ()):
        return "import"
    return None


def real_public_names(module: str) -> set[str]:
    """Every name user code can take from the real module: its public defs, classes, aliases and
    constants, names brought in by `import *` or by relative imports (`from .meta_config import
    get_metatable_list`, `from . import functions`), and whatever `__all__` lists."""
    real = API["modules"][module]
    names = set(real["all"] or ())
    for key in ("functions", "aliases", "constants", "classes", "star_imports"):
        names |= set(real[key])
    names |= {name for name, statement in real["imports"].items() if statement.startswith("from .")}
    return {name for name in names if not name.startswith("_")}


def resolve_function(module: str, name: str) -> dict[str, Any] | None:
    """Real description of a function name, following aliases (gmd3 -> get_market_data3 -> private def)."""
    real = API["modules"][module]
    seen: set[str] = set()
    while name in real["aliases"] and name not in seen:
        seen.add(name)
        name = real["aliases"][name]
    if name in real["functions"]:
        return real["functions"][name]
    star = real["star_imports"].get(name)
    return star if star and "params" in star else None


# --------------------------------------------------------------------------------------------------
# the reference data itself


def test_reference_data_is_canonical_and_for_250807() -> None:
    """The JSON is the deterministic output of the extractor for xtquant 250807.1.2, not hand-edited."""
    text = DATA_FILE.read_text(encoding="utf-8")
    assert text == json.dumps(API, sort_keys=True, indent=1, ensure_ascii=False) + "\n"
    assert API["source"]["version"] == "250807.1.2"
    assert API["source"]["package_version"] == "xtquant_250807"
    # the simulator declares exactly the wheel's top level (a changed reference must be reviewed there)
    assert tuple(sorted(qmtgate.sim.MODULES)) == ALL_MODULES
    assert API["compiled_only"] == ["datacenter", "xtpythonclient"]
    xtdata = API["modules"]["xtdata"]
    assert len(xtdata["functions"]) == 138
    assert xtdata["aliases"]["gmd2"] == "get_market_data_ex"
    assert [p["name"] for p in xtdata["functions"]["get_market_data_ex"]["params"]] == [
        "field_list",
        "stock_list",
        "period",
        "start_time",
        "end_time",
        "count",
        "dividend_type",
        "fill_data",
    ]
    assert decode(API["modules"]["xtconstant"]["constants"]["ORDER_JUNK"]["value"]) == 57


# --------------------------------------------------------------------------------------------------
# (a) names


@pytest.mark.parametrize("module", ALL_MODULES)
def test_sim_module_is_registered_as_xtquant_submodule(module: str) -> None:
    """`qmtgate.sim.install()` registers the package (`register_package`, also tested through
    install() in tests/sim/test_package_modules.py): `import xtquant.<module>` gives the sim module."""
    sim = load_sim(module)
    import sys

    from qmtgate import sim as sim_package

    saved = {k: v for k, v in sys.modules.items() if k == "xtquant" or k.startswith("xtquant.")}
    try:
        sim_package.register_package()
        assert importlib.import_module(f"xtquant.{module}") is sim
    finally:
        for key in [k for k in sys.modules if k == "xtquant" or k.startswith("xtquant.")]:
            del sys.modules[key]
        sys.modules.update(saved)


def test_sim_package_has_every_real_module() -> None:
    missing = [m for m in REQUIRED_MODULES if importlib.util.find_spec(f"{SIM_PACKAGE}.{m}") is None]
    assert not missing, f"modules of the real xtquant missing from the simulator: {missing}"


@pytest.mark.parametrize("module", ALL_MODULES)
def test_sim_has_every_real_public_name(module: str) -> None:
    """0 missing public names: whatever code can take from the real module, the sim module has."""
    sim = load_sim(module)
    missing = sorted(name for name in real_public_names(module) if not hasattr(sim, name))
    assert not missing, f"{SIM_PACKAGE}.{module} lacks {len(missing)} real names: {missing}"


#: Module-level settings user code (and the test suites) assign at run time, e.g.
#: `xtdata.enable_hello = False`; their import-time default is what the source says, not a constant.
RUNTIME_SETTINGS = {"enable_hello", "debug_mode", "data_dir", "status_callback", "init_complete"}


@pytest.mark.parametrize("module", ALL_MODULES)
def test_sim_constants_have_the_real_values(module: str) -> None:
    """Every public real constant with a literal value has the same value (and type) in the sim."""
    sim = load_sim(module)
    real = API["modules"][module]["constants"]
    different = sorted(
        f"{name}: sim {getattr(sim, name)!r} != real {decode(entry['value'])!r}"
        for name, entry in real.items()
        if not name.startswith("_")
        and name not in RUNTIME_SETTINGS
        and "value" in entry
        and hasattr(sim, name)
        and not same_value(getattr(sim, name), decode(entry["value"]))
    )
    assert not different, "\n".join(different)


@pytest.mark.parametrize("module", ALL_MODULES)
def test_every_public_sim_name_exists_in_real_module(module: str) -> None:
    sim = load_sim(module)
    unknown = sorted(name for name in public_names(sim) if real_kind(module, name) is None)
    assert not unknown, (
        f"{SIM_PACKAGE}.{module} exposes names that real xtquant.{module} does not have: {unknown}; "
        "rename helpers with a leading underscore"
    )


@pytest.mark.parametrize("module", ALL_MODULES)
def test_public_sim_names_have_the_real_kind(module: str) -> None:
    """A real function must be callable in the sim, a real class a class, a real constant plain data."""
    sim = load_sim(module)
    wrong = []
    for name, value in public_names(sim).items():
        kind = real_kind(module, name)
        if kind == "function" and (inspect.isclass(value) or not callable(value)):
            wrong.append(f"{name}: real function, sim {type(value).__name__}")
        elif kind == "class" and not inspect.isclass(value):
            wrong.append(f"{name}: real class, sim {type(value).__name__}")
        elif kind == "constant" and (inspect.isroutine(value) or inspect.isclass(value)):
            wrong.append(f"{name}: real constant, sim {type(value).__name__}")
    assert not wrong, wrong


@pytest.mark.parametrize("module", ALL_MODULES)
def test_sim_aliases_are_the_same_objects_as_their_targets(module: str) -> None:
    """Real aliases are plain rebinds (`gmd = get_market_data`), so they must be identical objects."""
    sim = load_sim(module)
    broken = [
        f"{alias} is not {target}"
        for alias, target in API["modules"][module]["aliases"].items()
        if hasattr(sim, alias) and hasattr(sim, target) and getattr(sim, alias) is not getattr(sim, target)
    ]
    assert not broken, broken


# --------------------------------------------------------------------------------------------------
# (b) function signatures


@pytest.mark.parametrize("module", ALL_MODULES)
def test_sim_function_signatures_match_real(module: str) -> None:
    """Same parameter names in the same order, same kinds and same defaults as the real function.

    Decorated real functions (`getDividFactors`, `timetagToDateTime` use a wrapper without
    functools.wraps) are compared with the parameters of the underlying def, which is what callers use.
    """
    sim = load_sim(module)
    problems = []
    for name, value in public_names(sim).items():
        if not inspect.isroutine(value):
            continue
        description = resolve_function(module, name)
        if description is None:
            continue  # not a real function: reported by the name and kind tests
        problem = signature_mismatch(f"{module}.{name}", value, description)
        if problem:
            problems.append(problem)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("module", ALL_MODULES)
def test_sim_class_methods_match_real(module: str) -> None:
    """Public methods and constructors of sim classes exist on the real class, with the same signature."""
    sim = load_sim(module)
    problems = []
    for class_name, cls in public_names(sim).items():
        real_class = API["modules"][module]["classes"].get(class_name)
        if not inspect.isclass(cls) or real_class is None:
            continue
        # Class-level aliases (XtQuantTrader.query_account_info = query_account_infos) count as methods.
        real_methods = dict(real_class["methods"])
        real_methods.update({a: real_class["methods"][t] for a, t in real_class["aliases"].items()})
        for method_name, method in vars(cls).items():
            if not inspect.isfunction(method):
                continue
            if method_name not in real_methods:
                if not method_name.startswith("_"):
                    problems.append(f"{class_name}.{method_name}: not a method of the real class")
                continue
            problem = signature_mismatch(f"{class_name}.{method_name}", method, real_methods[method_name])
            if problem:
                problems.append(problem)
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------------------------------------------
# (c) xtconstant


def test_xtconstant_has_every_real_constant_with_the_same_value() -> None:
    sim = load_sim("xtconstant")
    real = API["modules"]["xtconstant"]["constants"]
    assert len(real) > 500  # guards against an empty or truncated reference
    missing = sorted(name for name in real if not hasattr(sim, name))
    different = sorted(
        f"{name}: sim {getattr(sim, name)!r} != real {decode(real[name]['value'])!r}"
        for name in real
        if hasattr(sim, name) and not same_value(getattr(sim, name), decode(real[name]["value"]))
    )
    assert not missing and not different, "\n".join([f"missing constants: {missing}", *different])


def test_xtconstant_has_the_real_functions() -> None:
    sim = load_sim("xtconstant")
    assert sorted(API["modules"]["xtconstant"]["functions"]) == ["getDirectionByOpType"]
    assert callable(getattr(sim, "getDirectionByOpType", None))


@pytest.mark.parametrize(
    ("operation", "direction"),
    [
        ("OPT_BUY", "DIRECTION_FLAG_BUY"),
        ("OPT_FIN_BUY", "DIRECTION_FLAG_BUY"),
        ("OPT_OPTION_BUY_OPEN", "DIRECTION_FLAG_BUY"),
        ("OPT_FUND_TRANSFER_IN", "DIRECTION_FLAG_BUY"),
        ("OPT_OTC_FUND_SUBSCRIBE", "DIRECTION_FLAG_BUY"),
        ("OPT_SELL", "DIRECTION_FLAG_SELL"),
        ("OPT_SLO_SELL", "DIRECTION_FLAG_SELL"),
        ("OPT_FUND_TRANSFER_OUT", "DIRECTION_FLAG_SELL"),
        ("OPT_INVALID", "DIRECTION_FLAG_SELL"),
    ],
)
def test_get_direction_by_op_type(operation: str, direction: str) -> None:
    """Spot checks of the real buy list in getDirectionByOpType (anything not listed is a sell)."""
    sim = load_sim("xtconstant")
    assert sim.getDirectionByOpType(getattr(sim, operation)) == getattr(sim, direction)


# --------------------------------------------------------------------------------------------------
# (d) xttype


def _placeholder_args(description: dict[str, Any]) -> dict[str, str]:
    """Arguments for every required constructor parameter (strings satisfy StockAccount's check)."""
    return {
        p["name"]: f"<{p['name']}>"
        for p in description["params"][1:]
        if "default" not in p and p["kind"] == "POSITIONAL_OR_KEYWORD"
    }


def test_xttype_has_every_real_class() -> None:
    sim = load_sim("xttype")
    real = API["modules"]["xttype"]["classes"]
    missing = sorted(name for name in real if not inspect.isclass(getattr(sim, name, None)))
    assert not missing, f"missing classes: {missing}"


@pytest.mark.parametrize("class_name", sorted(API["modules"]["xttype"]["classes"]))
def test_xttype_constructor_matches_real(class_name: str) -> None:
    """Same __init__ (and __new__) parameters, same non-trivial bases, same instance attributes."""
    sim = load_sim("xttype")
    real = API["modules"]["xttype"]["classes"][class_name]
    cls = getattr(sim, class_name)

    for method in ("__init__", "__new__"):
        if method in real["methods"]:
            assert method in vars(cls), f"{class_name} must define its own {method}"
            problem = signature_mismatch(
                f"{class_name}.{method}", getattr(cls, method), real["methods"][method]
            )
            assert problem is None, problem

    real_bases = [b for b in real["bases"] if b != "object"]
    sim_bases = [b.__name__ for b in cls.__bases__ if b is not object]
    assert sim_bases == real_bases, f"{class_name} bases: sim {sim_bases} != real {real_bases}"

    instance = cls(**_placeholder_args(real["methods"]["__init__"]))
    attributes = sorted(vars(instance))
    assert attributes == real["attributes"], (
        f"{class_name} attributes: sim {attributes} != real {real['attributes']}"
    )


@pytest.mark.parametrize(
    ("type_name", "constant"),
    [
        ("STOCK", "SECURITY_ACCOUNT"),
        ("stock", "SECURITY_ACCOUNT"),
        ("Credit", "CREDIT_ACCOUNT"),
        ("FUTURE", "FUTURE_ACCOUNT"),
        ("STOCK_OPTION", "STOCK_OPTION_ACCOUNT"),
        ("OTC", "AT_OTC"),
    ],
)
def test_stock_account_maps_type_names_case_insensitively(type_name: str, constant: str) -> None:
    xttype, xtconstant = load_sim("xttype"), load_sim("xtconstant")
    account = xttype.StockAccount("8880001", type_name)
    assert account.account_id == "8880001"
    assert account.account_type == getattr(xtconstant, constant)


def test_stock_account_defaults_to_a_stock_account() -> None:
    xttype, xtconstant = load_sim("xttype"), load_sim("xtconstant")
    assert xttype.StockAccount("8880001").account_type == xtconstant.SECURITY_ACCOUNT == 2


def test_stock_account_with_non_str_id_returns_the_error_string() -> None:
    """The real __new__ returns a message instead of raising; callers have been bitten by this."""
    xttype = load_sim("xttype")
    result = xttype.StockAccount(8880001)
    assert result == "资金账号必须为字符串类型"
    assert not isinstance(result, xttype.StockAccount)


def test_stock_account_rejects_unknown_type_with_a_plain_exception() -> None:
    xttype = load_sim("xttype")
    with pytest.raises(Exception, match="不支持的账号类型：MARGIN！") as excinfo:
        xttype.StockAccount("8880001", "margin")
    assert type(excinfo.value) is Exception


@pytest.mark.parametrize(
    ("class_name", "constant"),
    [
        ("XtAsset", "SECURITY_ACCOUNT"),
        ("XtOrder", "SECURITY_ACCOUNT"),
        ("XtTrade", "SECURITY_ACCOUNT"),
        ("XtPosition", "SECURITY_ACCOUNT"),
        ("XtOrderError", "SECURITY_ACCOUNT"),
        ("XtCancelError", "SECURITY_ACCOUNT"),
        ("XtOrderResponse", "SECURITY_ACCOUNT"),
        ("XtCancelOrderResponse", "SECURITY_ACCOUNT"),
        ("XtCreditOrder", "CREDIT_ACCOUNT"),
        ("XtCreditDeal", "CREDIT_ACCOUNT"),
    ],
)
def test_structures_fix_their_account_type(class_name: str, constant: str) -> None:
    """The real constructors set account_type themselves (stock vs credit), whatever is passed in."""
    xttype, xtconstant = load_sim("xttype"), load_sim("xtconstant")
    real = API["modules"]["xttype"]["classes"][class_name]
    instance = getattr(xttype, class_name)(**_placeholder_args(real["methods"]["__init__"]))
    assert instance.account_type == getattr(xtconstant, constant)


def test_order_error_optional_fields_default_to_none() -> None:
    xttype = load_sim("xttype")
    error = xttype.XtOrderError("8880001", 7)
    assert (error.error_id, error.error_msg, error.strategy_name, error.order_remark) == (None,) * 4


# --------------------------------------------------------------------------------------------------
# (e) xttrader is complete: every real name, class and method exists in the simulator


def test_xttrader_has_every_real_name_and_method() -> None:
    """The simulated xttrader is a complete mirror (calls it does not model raise NotImplementedError
    naming themselves), so code written for the real module never meets an AttributeError."""
    sim = load_sim("xttrader")
    real = API["modules"]["xttrader"]
    missing = [name for name in [*real["functions"], *real["classes"]] if not hasattr(sim, name)]
    for class_name, description in real["classes"].items():
        cls = getattr(sim, class_name, None)
        names = [*description["methods"], *description["aliases"]]
        missing += [f"{class_name}.{m}" for m in names if m != "_time_to_timestamp" and not hasattr(cls, m)]
    assert not missing, f"missing in the simulated xttrader: {missing}"
    assert sim.XtQuantTrader.query_account_info is sim.XtQuantTrader.query_account_infos
