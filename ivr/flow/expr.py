"""The flow expression language: small, safe, compiled at load time.

Used by ``branch`` (``if:``), ``set`` and a gather's ``valid:``.  An expression is parsed with
Python's ``ast`` in eval mode, every node is checked against a whitelist, and the tree is turned
into nested closures.  Nothing is ever passed to ``eval`` or ``exec``.

What an expression may contain:

* literals: ``'text'``, ``"text"``, ``12``, ``1.5``, ``True``, ``False``, ``None``, lists ``[1, 2]``;
* variables, dotted too: ``birth``, ``caller.number``, ``call.dialled``, ``lang``;
* ``+ - * / // %`` (``*`` on numbers only), unary ``-``/``+``;
* comparisons ``== != < <= > >=``, ``in``/``not in``, chained (``1 <= m <= 12``);
* ``and``, ``or``, ``not``; ``a if cond else b``;
* indexing and slicing: ``birth[2:4]``, ``code[0]``;
* the functions ``len int str abs min max startswith endswith``.

Variables: reading a variable that has no value raises ``ExprRuntimeError``, except names under
``caller.`` and ``call.`` (facts the engine supplies when it knows them), which read as ``None``.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import operator
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["Expr", "ExprError", "ExprRuntimeError", "compile_expr", "constant", "ENGINE_NAMESPACES",
           "FUNCTIONS", "is_variable_name"]

MAX_SOURCE = 500
ENGINE_NAMESPACES = ("caller.", "call.", "queue.")   # supplied by the engine; missing ones read as None

Env = Mapping[str, Any]
Fn = Callable[[Env], Any]


class ExprError(ValueError):
    """The expression is not valid: a definition error, found at load."""


class ExprRuntimeError(ValueError):
    """The expression failed while a call was running (a variable without value, int('ab')…)."""


def _startswith(text: Any, prefix: Any) -> bool:
    return str(text).startswith(str(prefix))


def _endswith(text: Any, suffix: Any) -> bool:
    return str(text).endswith(str(suffix))


FUNCTIONS: Mapping[str, Callable[..., Any]] = {
    "len": len, "int": int, "str": str, "abs": abs, "min": min, "max": max,
    "startswith": _startswith, "endswith": _endswith,
}

_BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
}
_CMPOPS: dict[type, Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b,
}
_FORBIDDEN_NAMES = {
    ast.Lambda: "lambda", ast.ListComp: "comprehensions", ast.SetComp: "comprehensions",
    ast.DictComp: "comprehensions", ast.GeneratorExp: "generator expressions",
    ast.NamedExpr: "':=' assignments", ast.Await: "await", ast.Yield: "yield",
    ast.JoinedStr: "f-strings", ast.Dict: "dict literals", ast.Set: "set literals",
    ast.Starred: "'*' unpacking",
}


@dataclasses.dataclass(frozen=True, slots=True)
class Expr:
    """A compiled expression.  ``names`` are the variables it reads."""

    source: str
    names: frozenset[str]
    fn: Fn = dataclasses.field(repr=False, compare=False)

    def evaluate(self, variables: Env) -> Any:
        try:
            return self.fn(variables)
        except ExprRuntimeError:
            raise
        except RecursionError:
            raise ExprRuntimeError(f"`{self.source}` is nested too deeply") from None
        except (TypeError, ValueError, ZeroDivisionError, IndexError, KeyError, OverflowError) as exc:
            raise ExprRuntimeError(f"`{self.source}` failed: {exc}") from exc


def constant(value: Any) -> Expr:
    """An expression that is just a value (a number or true/false written in YAML)."""
    return Expr(repr(value), frozenset(), lambda _env: value)


def is_variable_name(name: str) -> bool:
    """``birth`` or ``caller.age``: identifiers joined by dots, none starting with '_'."""
    parts = name.split(".")
    return all(p.isidentifier() and not p.startswith("_") for p in parts)


def compile_expr(source: str, known: Callable[[str], bool] | None = None,
                 suggestions: Callable[[], list[str]] | None = None) -> Expr:
    """Parse and check ``source``; ``ExprError`` says what is wrong.

    ``known(name)`` (optional) says whether a variable exists; unknown ones are errors, with a
    did-you-mean taken from ``suggestions()``.
    """
    if not isinstance(source, str) or not source.strip():
        raise ExprError("an expression must be non-empty text")
    if len(source) > MAX_SOURCE:
        raise ExprError(f"an expression may be at most {MAX_SOURCE} characters long")
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExprError(f"`{source}` is not a valid expression: {exc.msg}") from None
    except (RecursionError, MemoryError, ValueError):
        raise ExprError(f"`{source}` is not a valid expression") from None
    names: set[str] = set()
    try:
        fn = _Compiler(source, names).compile(tree.body)
    except RecursionError:
        raise ExprError(f"`{source}` is nested too deeply") from None
    if known is not None:
        for name in sorted(names):
            if not known(name):
                hint = ""
                if suggestions is not None:
                    close = difflib.get_close_matches(name, suggestions(), n=1)
                    hint = f" (did you mean '{close[0]}'?)" if close else ""
                if name.startswith("caller."):
                    raise ExprError(f"`{source}` uses '{name}', which the engine does not know about "
                                    f"callers{hint}")
                raise ExprError(f"`{source}` uses the variable '{name}', which is never set{hint}; "
                                "give it a default under 'vars:'")
    return Expr(source, frozenset(names), fn)


class _Compiler:
    def __init__(self, source: str, names: set[str]) -> None:
        self.source = source
        self.names = names

    def fail(self, what: str) -> ExprError:
        return ExprError(f"`{self.source}`: not allowed in a flow expression: {what}")

    def compile(self, node: ast.AST) -> Fn:
        method: Callable[[Any], Fn] | None = getattr(self, "c_" + type(node).__name__, None)
        if method is None:
            raise self.fail(_FORBIDDEN_NAMES.get(type(node), f"'{type(node).__name__}'"))
        return method(node)

    # -- leaves ------------------------------------------------------------------------------
    def c_Constant(self, node: ast.Constant) -> Fn:
        value = node.value
        if not isinstance(value, (str, int, float, bool)) and value is not None:
            raise self.fail(f"the literal {value!r}")
        return lambda _env: value

    def c_Name(self, node: ast.Name) -> Fn:
        return self._variable(node.id)

    def c_Attribute(self, node: ast.Attribute) -> Fn:
        return self._variable(self._dotted(node))

    def _dotted(self, node: ast.AST) -> str:
        if isinstance(node, ast.Name):
            return node.id
        if isinstance(node, ast.Attribute):
            return f"{self._dotted(node.value)}.{node.attr}"
        raise self.fail("attribute access on a value (use a function such as startswith(x, 'a'))")

    def _variable(self, name: str) -> Fn:
        if not is_variable_name(name):
            raise self.fail(f"the name '{name}' (names may not start with '_')")
        if name in FUNCTIONS:
            raise self.fail(f"'{name}' without calling it")
        self.names.add(name)
        missing_is_none = name.startswith(ENGINE_NAMESPACES)

        def read(env: Env) -> Any:
            try:
                return env[name]
            except KeyError:
                if missing_is_none:
                    return None
                raise ExprRuntimeError(f"the variable '{name}' has no value yet") from None
        return read

    def c_List(self, node: ast.List) -> Fn:
        items = [self.compile(e) for e in node.elts]
        return lambda env: [f(env) for f in items]

    c_Tuple = c_List

    # -- operators ---------------------------------------------------------------------------
    def c_BinOp(self, node: ast.BinOp) -> Fn:
        left, right = self.compile(node.left), self.compile(node.right)
        if isinstance(node.op, ast.Mult):
            def mult(env: Env) -> Any:
                a, b = left(env), right(env)
                if not isinstance(a, (int, float)) or not isinstance(b, (int, float)):
                    raise ExprRuntimeError(f"`{self.source}`: '*' works on numbers only")
                product = a * b
                if isinstance(product, int) and product.bit_length() > 256:
                    raise ExprRuntimeError(f"`{self.source}`: the number grew too large")
                return product
            return mult
        op = _BINOPS.get(type(node.op))
        if op is None:
            raise self.fail(f"the operator '{type(node.op).__name__}'")
        return lambda env: op(left(env), right(env))

    def c_UnaryOp(self, node: ast.UnaryOp) -> Fn:
        operand = self.compile(node.operand)
        if isinstance(node.op, ast.Not):
            return lambda env: not operand(env)
        if isinstance(node.op, ast.USub):
            return lambda env: -operand(env)
        if isinstance(node.op, ast.UAdd):
            return lambda env: +operand(env)
        raise self.fail("the operator '~'")

    def c_BoolOp(self, node: ast.BoolOp) -> Fn:
        parts = [self.compile(v) for v in node.values]
        if isinstance(node.op, ast.And):
            def all_of(env: Env) -> Any:
                value: Any = True
                for part in parts:
                    value = part(env)
                    if not value:
                        return value
                return value
            return all_of

        def any_of(env: Env) -> Any:
            value: Any = False
            for part in parts:
                value = part(env)
                if value:
                    return value
            return value
        return any_of

    def c_Compare(self, node: ast.Compare) -> Fn:
        first = self.compile(node.left)
        rest = [(_CMPOPS.get(type(op)), self.compile(c)) for op, c in zip(node.ops, node.comparators, strict=True)]
        for (op, _), raw in zip(rest, node.ops, strict=True):
            if op is None:
                raise self.fail(f"the comparison '{type(raw).__name__}' (use == or !=)")

        def compare(env: Env) -> bool:
            left = first(env)
            for op, f in rest:
                right = f(env)
                if not op(left, right):  # type: ignore[misc]
                    return False
                left = right
            return True
        return compare

    def c_IfExp(self, node: ast.IfExp) -> Fn:
        test, body, orelse = self.compile(node.test), self.compile(node.body), self.compile(node.orelse)
        return lambda env: body(env) if test(env) else orelse(env)

    def c_Subscript(self, node: ast.Subscript) -> Fn:
        value = self.compile(node.value)
        if isinstance(node.slice, ast.Slice):
            s = node.slice
            if s.step is not None:
                raise self.fail("a slice step")
            lower = self.compile(s.lower) if s.lower else (lambda _env: None)
            upper = self.compile(s.upper) if s.upper else (lambda _env: None)
            return lambda env: value(env)[lower(env):upper(env)]
        index = self.compile(node.slice)
        return lambda env: value(env)[index(env)]

    def c_Call(self, node: ast.Call) -> Fn:
        if not isinstance(node.func, ast.Name):
            what = self._describe(node.func)
            raise self.fail(f"calling {what} (functions: {', '.join(FUNCTIONS)})")
        func = FUNCTIONS.get(node.func.id)
        if func is None:
            raise self.fail(f"calling '{node.func.id}' (functions: {', '.join(FUNCTIONS)})")
        if node.keywords:
            raise self.fail("keyword arguments")
        args = [self.compile(a) for a in node.args]
        return lambda env: func(*[a(env) for a in args])

    def _describe(self, node: ast.AST) -> str:
        try:
            return f"'{ast.unparse(node)}'"
        except Exception:  # pragma: no cover - unparse of a parsed tree does not fail
            return "that"
