"""Extract the API surface of the real xtquant wheel into JSON test data, reading the sources with `ast`.

Why: the real xtquant (迅投 QMT SDK) imports only on Windows (its core is native `.pyd`), yet the simulated
`qmtgate.sim.xtquant` must keep its exact names, signatures, defaults and constants. This script records
that surface once, from the real wheel's sources, so tests/contract/test_api_surface.py can check the
simulator on any platform without the wheel. Nothing from the wheel is imported or executed.

For each top-level module of the wheel (see MODULES; compiled-only `.pyd` parts are listed under
"compiled_only" and skipped) the JSON holds: top-level functions with their
parameters (name, `inspect.Parameter` kind, default and annotation as source text), aliases
(`gmd = get_market_data`), constants with their values (tagged JSON, see `encode_value`), classes with
bases, methods and the `self.*` attributes set in `__init__`, names bound by explicit imports, and names
brought in by `from .pkg import *`. Bindings are replayed in source order, so a later definition replaces
an earlier one exactly as at import time.

Regenerate (from the repository root):

    mkdir -p /tmp/xtq && cd /tmp/xtq && pip download -q --no-deps xtquant==250807.1.2 \\
        && unzip -q -o xtquant-*.whl -d w && cd -
    .venv/bin/python tools/extract_xtquant_signatures.py --src /tmp/xtq/w/xtquant

`--check` compares with the committed JSON instead of writing it (exit status 1 when stale).
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Python-readable modules at the wheel's top level (found by `discover_modules`, listed here for
#: documentation and as a check that the wheel still has them). Packages are described by the names
#: their ``__init__`` binds; their submodules are listed as module-kind names.
MODULES = (
    "metatable",
    "qmttools",
    "xtbson",
    "xtconn",
    "xtconstant",
    "xtdata",
    "xtdata_config",
    "xtdatacenter",
    "xtextend",
    "xtstocktype",
    "xttools",
    "xttrader",
    "xttype",
    "xtutil",
    "xtview",
)
#: A package whose ``__init__`` only picks a version-specific subpackage: describe the branch that
#: every supported Python (3.7+) takes (``xtbson/__init__.py``: ``from .bson37 import *`` unless 3.6).
EFFECTIVE_SOURCE = {"xtbson": "xtbson.bson37"}
SCHEMA_VERSION = 2
REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SRC = Path("/tmp/xtq/w/xtquant")
DEFAULT_OUT = REPO_ROOT / "tests" / "contract" / "data" / "xtquant_250807_api.json"

JsonDict = dict[str, Any]


# --------------------------------------------------------------------------------------------------
# values


class NotLiteral(Exception):
    """Raised when a constant's value cannot be computed from literals and earlier constants."""


def evaluate(node: ast.expr, known: dict[str, Any]) -> Any:
    """Evaluate a constant expression; names resolve to constants bound earlier in the same module.

    `ast.literal_eval` is not enough: xtconstant builds dicts and sets from other constants
    (`ACCOUNT_TYPE_DICT = {FUTURE_ACCOUNT: 'FUTURE', ...}`).
    """
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id in known:
            return known[node.id]
        raise NotLiteral(node.id)
    if isinstance(node, ast.Tuple):
        return tuple(evaluate(elt, known) for elt in node.elts)
    if isinstance(node, ast.List):
        return [evaluate(elt, known) for elt in node.elts]
    if isinstance(node, ast.Set):
        return {evaluate(elt, known) for elt in node.elts}
    if isinstance(node, ast.Dict):
        if any(key is None for key in node.keys):
            raise NotLiteral("dict unpacking")
        return {evaluate(k, known): evaluate(v, known) for k, v in zip(node.keys, node.values, strict=True)}
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        operand = evaluate(node.operand, known)
        return -operand if isinstance(node.op, ast.USub) else +operand
    raise NotLiteral(ast.dump(node)[:60])


def _sort_key(value: Any) -> tuple[str, str]:
    return (type(value).__name__, repr(value))


def encode_value(value: Any) -> Any:
    """Encode a Python constant as JSON without losing its type.

    Scalars (None, bool, int, str, finite float) stay plain; containers are tagged so that lists,
    tuples, sets and dicts with non-string keys survive the round trip: {"__list__": [...]},
    {"__tuple__": [...]}, {"__set__": [...sorted...]}, {"__dict__": [[key, value], ...]} and
    {"__float__": "nan"} for non-finite floats, {"__bytes__": hex} for bytes (xtbson's type markers). tests/contract/test_api_surface.py decodes it.
    """
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"__float__": repr(value)}
    if isinstance(value, bytes):
        return {"__bytes__": value.hex()}
    if isinstance(value, list):
        return {"__list__": [encode_value(v) for v in value]}
    if isinstance(value, tuple):
        return {"__tuple__": [encode_value(v) for v in value]}
    if isinstance(value, (set, frozenset)):
        return {"__set__": [encode_value(v) for v in sorted(value, key=_sort_key)]}
    if isinstance(value, dict):
        return {"__dict__": [[encode_value(k), encode_value(v)] for k, v in value.items()]}
    raise TypeError(f"cannot encode {type(value).__name__}")


# --------------------------------------------------------------------------------------------------
# functions and classes


def _params(args: ast.arguments) -> list[JsonDict]:
    """List parameters in signature order with their `inspect.Parameter.kind` names."""
    out: list[JsonDict] = []

    def add(arg: ast.arg, kind: str, default: ast.expr | None) -> None:
        entry: JsonDict = {"name": arg.arg, "kind": kind}
        if default is not None:
            entry["default"] = ast.unparse(default)
        if arg.annotation is not None:
            entry["annotation"] = ast.unparse(arg.annotation)
        out.append(entry)

    positional = [*args.posonlyargs, *args.args]
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    for index, arg in enumerate(positional):
        kind = "POSITIONAL_ONLY" if index < len(args.posonlyargs) else "POSITIONAL_OR_KEYWORD"
        add(arg, kind, defaults[index])
    if args.vararg is not None:
        add(args.vararg, "VAR_POSITIONAL", None)
    for arg, kw_default in zip(args.kwonlyargs, args.kw_defaults, strict=True):
        add(arg, "KEYWORD_ONLY", kw_default)
    if args.kwarg is not None:
        add(args.kwarg, "VAR_KEYWORD", None)
    return out


def describe_function(node: ast.FunctionDef | ast.AsyncFunctionDef) -> JsonDict:
    """Describe a def; decorators are kept because they can change the runtime signature."""
    return {
        "params": _params(node.args),
        "decorators": [ast.unparse(d) for d in node.decorator_list],
        "is_async": isinstance(node, ast.AsyncFunctionDef),
        "lineno": node.lineno,
    }


def _self_attributes(init: ast.FunctionDef) -> list[str]:
    """Names of `self.X` assigned anywhere in `__init__` (also inside loops, as StockAccount does)."""
    self_name = init.args.args[0].arg if init.args.args else "self"
    found: set[str] = set()
    for node in ast.walk(init):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            targets = [node.target]
        for target in targets:
            for sub in ast.walk(target):
                if (
                    isinstance(sub, ast.Attribute)
                    and isinstance(sub.value, ast.Name)
                    and sub.value.id == self_name
                    and isinstance(sub.ctx, ast.Store)
                ):
                    found.add(sub.attr)
    return sorted(found)


def describe_class(node: ast.ClassDef) -> JsonDict:
    """Describe a class: bases, methods, class-level aliases/constants and `__init__` attributes."""
    methods: JsonDict = {}
    aliases: dict[str, str] = {}
    constants: JsonDict = {}
    for item in node.body:
        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
            methods[item.name] = describe_function(item)
            aliases.pop(item.name, None)
        elif isinstance(item, ast.Assign):
            for target in item.targets:
                if not isinstance(target, ast.Name):
                    continue
                if isinstance(item.value, ast.Name) and (
                    item.value.id in methods or item.value.id in aliases
                ):
                    aliases[target.id] = item.value.id
                else:
                    constants[target.id] = {"source": ast.unparse(item.value)}
    init = next(
        (i for i in node.body if isinstance(i, ast.FunctionDef) and i.name == "__init__"),
        None,
    )
    return {
        "bases": [ast.unparse(b) for b in node.bases],
        "methods": methods,
        "aliases": aliases,
        "constants": constants,
        "attributes": _self_attributes(init) if init is not None else [],
        "lineno": node.lineno,
    }


# --------------------------------------------------------------------------------------------------
# module namespaces


@dataclass
class Binding:
    """What a module-level name is bound to after its statement runs."""

    kind: str  # function | class | alias | constant | import | star
    data: JsonDict = field(default_factory=dict)
    value: Any = None  # evaluated value, constants only
    has_value: bool = False


def _relative_module(node: ast.ImportFrom, package: str) -> str:
    """Dotted name (inside the wheel) of the module an `ImportFrom` refers to."""
    parts = package.split(".") if package else []
    if node.level > 1:
        parts = parts[: len(parts) - (node.level - 1)]
    if node.module:
        parts = [*parts, *node.module.split(".")]
    return ".".join(parts)


def _import_time_statements(body: list[ast.stmt]) -> list[ast.stmt]:
    """Statements that run when a module is imported: the body, descending into if/try but not defs."""
    out: list[ast.stmt] = []
    for node in body:
        out.append(node)
        if isinstance(node, ast.If):
            out += _import_time_statements(node.body) + _import_time_statements(node.orelse)
        elif isinstance(node, ast.Try):
            out += _import_time_statements(node.body) + _import_time_statements(node.orelse)
            out += _import_time_statements(node.finalbody)
            for handler in node.handlers:
                out += _import_time_statements(handler.body)
    return out


class Wheel:
    """The unpacked `xtquant` package directory; parses modules on demand and caches them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._trees: dict[str, ast.Module] = {}

    def path_of(self, dotted: str) -> Path | None:
        """Source file of a module inside the wheel ('' is the package itself), or None if native/absent."""
        base = self.root.joinpath(*dotted.split(".")) if dotted else self.root
        for candidate in (base / "__init__.py", base.with_suffix(".py")):
            if candidate.is_file():
                return candidate
        return None

    def tree(self, dotted: str) -> ast.Module | None:
        if dotted not in self._trees:
            path = self.path_of(dotted)
            if path is None:
                return None
            self._trees[dotted] = ast.parse(
                path.read_text(encoding="utf-8-sig"), filename=str(path)
            )  # xtconn has a BOM
        return self._trees[dotted]

    def is_package(self, dotted: str) -> bool:
        path = self.path_of(dotted)
        return path is not None and path.name == "__init__.py"

    def find_def(self, dotted: str, name: str) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
        """Last top-level def of `name` in a module (the one that wins at import time)."""
        tree = self.tree(dotted)
        found = None
        for node in tree.body if tree else []:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
                found = node
        return found

    def submodules_imported(self, package: str) -> set[str]:
        """Submodules of `package` that importing it loads (each becomes an attribute of the package)."""
        seen: set[str] = set()
        todo = [package]
        while todo:
            current = todo.pop()
            tree = self.tree(current)
            if tree is None:
                continue
            current_pkg = current if self.is_package(current) else current.rpartition(".")[0]
            for node in _import_time_statements(tree.body):
                if not isinstance(node, ast.ImportFrom) or node.level == 0:
                    continue
                target = _relative_module(node, current_pkg)
                candidates = [target] + [f"{target}.{a.name}" if target else a.name for a in node.names]
                for module in candidates:
                    if module.startswith(package + ".") and self.path_of(module) and module not in seen:
                        seen.add(module)
                        todo.append(module)
        return {m[len(package) + 1 :].split(".")[0] for m in seen}

    def star_exports(self, package: str) -> JsonDict:
        """Names `from <package> import *` binds, with their origin and, for functions, parameters."""
        tree = self.tree(package)
        if tree is None:
            return {}
        exports: JsonDict = {}
        for name in sorted(self.submodules_imported(package)):
            exports[name] = {"kind": "module", "origin": f"{package}.{name}"}
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and node.level > 0:
                source = _relative_module(node, package)
                for alias in node.names:
                    bound = alias.asname or alias.name
                    submodule = f"{source}.{alias.name}"
                    if self.path_of(submodule) is not None:
                        exports[bound] = {"kind": "module", "origin": submodule}
                    else:
                        exports[bound] = self._resolved(source, alias.name)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                exports[node.name] = {"kind": "function", "origin": f"{package}.{node.name}"}
                exports[node.name].update(params=_params(node.args))
            elif isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        exports[target.id] = self._resolve_expr(package, node.value, exports)
        explicit_all = self._explicit_all(tree)
        if explicit_all is not None:
            return {name: exports.get(name, {"kind": "unknown"}) for name in explicit_all}
        return {name: entry for name, entry in exports.items() if not name.startswith("_")}

    def _resolved(self, module: str, name: str) -> JsonDict:
        node = self.find_def(module, name)
        if node is None:
            return {"kind": "other", "origin": f"{module}.{name}"}
        return {"kind": "function", "origin": f"{module}.{name}", "params": _params(node.args)}

    def _resolve_expr(self, package: str, value: ast.expr, exports: JsonDict) -> JsonDict:
        """Resolve `name = submodule.func` (how metatable re-exports get_tabular_data)."""
        if isinstance(value, ast.Attribute) and isinstance(value.value, ast.Name):
            owner = exports.get(value.value.id)
            if owner and owner["kind"] == "module":
                return self._resolved(owner["origin"], value.attr)
        if isinstance(value, ast.Name) and value.id in exports:
            return exports[value.id]
        return {"kind": "other", "source": ast.unparse(value)}

    @staticmethod
    def _explicit_all(tree: ast.Module) -> list[str] | None:
        for node in tree.body:
            if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
            ):
                return list(ast.literal_eval(node.value))
        return None


def _bind(namespace: dict[str, Binding], name: str, binding: Binding) -> None:
    """Rebind a name; re-inserting keeps the dict in final-binding order like a module's globals."""
    namespace.pop(name, None)
    namespace[name] = binding


def _bind_assign(namespace: dict[str, Binding], node: ast.Assign) -> None:
    """Classify `x = <expr>` as an alias of a callable, or as a constant (with value if computable)."""
    names = [t.id for t in node.targets if isinstance(t, ast.Name)]
    value = node.value
    for name in names:
        if isinstance(value, ast.Name) and value.id in namespace:
            target = namespace[value.id]
            if target.kind in ("function", "class", "alias", "star"):
                _bind(namespace, name, Binding("alias", {"target": value.id}))
                continue
        binding = Binding("constant", {"source": ast.unparse(value)})
        known = {k: b.value for k, b in namespace.items() if b.kind == "constant" and b.has_value}
        try:
            binding.value = evaluate(value, known)
            binding.has_value = True
        except (NotLiteral, TypeError):
            pass
        _bind(namespace, name, binding)


def extract_module(wheel: Wheel, module: str) -> JsonDict:
    """Replay a module's top-level statements and report every name it leaves bound."""
    tree = wheel.tree(module)
    if tree is None:
        raise FileNotFoundError(f"{module}.py not found under {wheel.root}")
    namespace: dict[str, Binding] = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            _bind(namespace, node.name, Binding("function", describe_function(node)))
        elif isinstance(node, ast.ClassDef):
            _bind(namespace, node.name, Binding("class", describe_class(node)))
        elif isinstance(node, ast.Assign):
            _bind_assign(namespace, node)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value:
            _bind_assign(namespace, ast.Assign(targets=[node.target], value=node.value, lineno=node.lineno))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                bound = alias.asname or alias.name.split(".")[0]
                _bind(namespace, bound, Binding("import", {"statement": ast.unparse(node)}))
        elif isinstance(node, ast.ImportFrom):
            source = _relative_module(node, "") if node.level else (node.module or "")
            for alias in node.names:
                if alias.name == "*":
                    for name, entry in wheel.star_exports(source).items():
                        _bind(namespace, name, Binding("star", {"from": source, **entry}))
                else:
                    bound = alias.asname or alias.name
                    statement = f"from {'.' * node.level}{node.module or ''} import {alias.name}"
                    if alias.asname:
                        statement += f" as {alias.asname}"
                    _bind(namespace, bound, Binding("import", {"statement": statement}))

    result: JsonDict = {
        "functions": {},
        "aliases": {},
        "constants": {},
        "classes": {},
        "imports": {},
        "star_imports": {},
    }
    for name, binding in namespace.items():
        if binding.kind == "function":
            result["functions"][name] = binding.data
        elif binding.kind == "class":
            result["classes"][name] = binding.data
        elif binding.kind == "alias":
            result["aliases"][name] = binding.data["target"]
        elif binding.kind == "constant":
            entry = dict(binding.data)
            if binding.has_value:
                entry["value"] = encode_value(binding.value)
            result["constants"][name] = entry
        elif binding.kind == "import":
            result["imports"][name] = binding.data["statement"]
        elif binding.kind == "star":
            result["star_imports"][name] = binding.data
    all_binding = namespace.get("__all__")
    result["all"] = list(all_binding.value) if all_binding and all_binding.has_value else None
    return result


# --------------------------------------------------------------------------------------------------
# whole document


def _wheel_version(src: Path) -> str | None:
    """Distribution version from the sibling *.dist-info/METADATA, e.g. '250807.1.2'."""
    for metadata in sorted(src.parent.glob("xtquant-*.dist-info/METADATA")):
        for line in metadata.read_text(encoding="utf-8").splitlines():
            if line.startswith("Version:"):
                return line.split(":", 1)[1].strip()
    return None


def _package_version(wheel: Wheel) -> str | None:
    tree = wheel.tree("")
    for node in tree.body if tree else []:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__version__" for t in node.targets
        ):
            return ast.literal_eval(node.value)
    return None


def discover_modules(src: Path) -> tuple[list[str], list[str]]:
    """Top-level modules of the wheel: (Python sources and packages, compiled-only extension names).

    Compiled-only parts (``datacenter``, ``xtpythonclient``: Windows ``.pyd``) cannot be read with
    `ast`; they are listed in the document so the gap is visible, and their Python wrappers
    (``xtdatacenter``, ``xtdata.get_client``) carry their surface.
    """
    python = sorted(
        [p.stem for p in src.glob("*.py") if p.stem != "__init__"]
        + [p.name for p in src.iterdir() if p.is_dir() and (p / "__init__.py").is_file()]
    )
    compiled = sorted({p.name.split(".")[0] for p in src.glob("*.pyd")} - set(python))
    return python, compiled


def extract_any(wheel: Wheel, module: str) -> JsonDict:
    """A module's surface, following EFFECTIVE_SOURCE for version-dispatching packages."""
    source = EFFECTIVE_SOURCE.get(module, module)
    described = extract_module(wheel, source)
    if source != module:
        described["effective_source"] = source
    return described


def build_document(src: Path) -> JsonDict:
    wheel = Wheel(src)
    modules, compiled = discover_modules(src)
    if tuple(modules) != MODULES:
        raise SystemExit(f"the wheel's top-level modules changed: {modules}; update MODULES")
    files = {
        str(path.relative_to(src)): hashlib.sha256(path.read_bytes()).hexdigest()
        for module in modules
        for path in ([wheel.path_of(EFFECTIVE_SOURCE.get(module, module))])
        if path is not None
    }
    return {
        "schema": SCHEMA_VERSION,
        "source": {
            "distribution": "xtquant",
            "version": _wheel_version(src),
            "package_version": _package_version(wheel),
            "sha256": files,
            "generator": "tools/extract_xtquant_signatures.py",
        },
        "compiled_only": compiled,
        "modules": {module: extract_any(wheel, module) for module in modules},
    }


def render(document: JsonDict) -> str:
    """Deterministic text: sorted keys, indent=1, UTF-8 kept readable, trailing newline."""
    return json.dumps(document, sort_keys=True, indent=1, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, default=DEFAULT_SRC, help="unpacked xtquant package directory")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON file to write")
    parser.add_argument("--check", action="store_true", help="only compare with --out; exit 1 if stale")
    args = parser.parse_args(argv)

    if not (args.src / "xtdata.py").is_file():
        parser.error(f"{args.src} does not look like an unpacked xtquant package (no xtdata.py)")
    text = render(build_document(args.src))
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.is_file() else ""
        if current != text:
            print(f"{args.out} is stale; rerun without --check", file=sys.stderr)
            return 1
        print(f"{args.out} is up to date")
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
