"""A small, safe expression language for selecting metadata rows (forget sets, includes).

Every "query" parameter (``unlearning.<task>.request.query``, ``recon.forget.query``,
``recon.splits.include``, ``segmentation.split.forget.query``) is written in this language
and evaluated here, never by pandas: ``DataFrame.query`` / ``eval`` resolve ``@name`` to any
Python object reachable from the caller (``"@pd.io.common.os.system('…') == 0"`` runs a
shell command), so a parameter file or a ``--params`` string could run code. This module
parses the text with :mod:`ast`, accepts only the node types listed below and computes the
boolean mask itself with pandas Series operations; nothing is ever ``eval``-ed or compiled.

The language:

- **column names**: bare Python identifiers naming metadata columns (``anatomy``,
  ``num_slices``, ``role``). Names that are not identifiers (spaces, dashes) cannot be used:
  rename the column in the metadata CSV. Backticks are not supported.
- **literals**: strings (``'knee'`` or ``"knee"``), integers, floats (``-1.5``, ``1e-3``),
  ``True``, ``False``, ``None``; lists or tuples of these (``['AXT2', 'CORPD_FBK']``).
- **comparisons**: ``==  !=  <  <=  >  >=`` between columns and literals, chained
  (``10 < num_slices <= 40``); ``col == None`` / ``col != None`` test for missing values.
  A missing value (NaN) compares false, except with ``!=``.
- **membership**: ``col in [..]`` and ``col not in [..]`` (the right side a list or tuple
  of literals).
- **logic**: ``and``, ``or``, ``not``, parentheses. A bare column is allowed as a condition
  only if it is boolean (``not is_outlier``).

Nothing else: no attribute access (``.str.contains``), calls, subscripts, arithmetic,
``@`` variables, ``&`` / ``|`` / ``~`` (use ``and`` / ``or`` / ``not``), lambdas or
comprehensions. To select by a pattern, list the values or add a column to the metadata
CSV. A refused expression raises :class:`QueryError` naming the parameter and the
offending part.

Examples::

    anatomy == 'knee'
    acquisition in ['AXT2', 'CORPD_FBK', 'CORPDFS_FBK']
    num_slices > 30 and scanner_model != 'Aera'
    not (role in ('unused', 'retain_test'))
"""

from __future__ import annotations

import ast
import io
import operator
import tokenize
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
import pandas as pd
from pydantic import AfterValidator

__all__ = [
    "Query",
    "QueryError",
    "SafeQuery",
    "checked_query",
    "evaluate_query",
    "filter_frame",
    "parse_query",
]

#: Longest accepted expression (characters); a guard against pathological input.
MAX_LENGTH = 2000

_COMPARISONS: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
_SYMBOLS = {
    ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=",
    ast.In: "in", ast.NotIn: "not in",
}
_LITERAL_TYPES = (str, int, float, bool, type(None))


class QueryError(ValueError):
    """A query parameter that is not in the query language or does not fit the table."""


@dataclass(frozen=True)
class Query:
    """A parsed, checked query.

    Attributes:
        text: the expression as written.
        parameter: the parameter it came from (for messages).
        columns: the column names it refers to.
    """

    text: str
    parameter: str
    tree: ast.Expression
    columns: frozenset[str]

    def evaluate(self, frame: pd.DataFrame) -> pd.Series:
        """The boolean mask (aligned with ``frame``) of the rows the query selects.

        Raises:
            QueryError: a column the table does not have (the columns are listed), a
                non-boolean column used as a condition, or values that cannot be compared.
        """
        missing = sorted(self.columns - set(map(str, frame.columns)))
        if missing:
            raise QueryError(
                f"{self.parameter} {self.text!r}: unknown column(s) {missing}; the table has "
                f"{list(frame.columns)}"
            )
        result = _Evaluator(self, frame).condition(self.tree.body)
        return pd.Series(np.asarray(result, dtype=bool), index=frame.index)


def _refuse(query_text: str, parameter: str, what: str, node: ast.AST | None = None) -> QueryError:
    part = ""
    if node is not None:
        segment = ast.get_source_segment(query_text, node)
        if segment:
            part = f" at {segment!r}"
    return QueryError(
        f"{parameter} {query_text!r}: {what}{part} is not allowed; a query may use column "
        "names, literals (str, int, float, bool, None, lists of them), comparisons "
        "(== != < <= > >=), in / not in, and / or / not and parentheses "
        "(see med_unlearning.data.query)"
    )


def _check_tokens(text: str, parameter: str) -> None:
    """Refuse ``@`` and backticks with their own message (they are pandas-query syntax)."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError) as error:
        raise QueryError(f"{parameter} {text!r}: not a valid expression ({error})") from None
    for token in tokens:
        if token.string in ("@", "@="):
            raise QueryError(
                f"{parameter} {text!r}: '@' (a reference to a Python variable) is not "
                "allowed; a query may only name metadata columns and literals"
            )
        if token.type == tokenize.ERRORTOKEN and token.string == "`":
            raise QueryError(
                f"{parameter} {text!r}: backticked column names are not supported; use "
                "columns whose names are identifiers (rename them in the metadata CSV)"
            )


def parse_query(text: str, parameter: str = "query") -> Query:
    """Parse and check ``text`` (see the module docstring for the language).

    Args:
        text: the expression.
        parameter: the parameter it comes from, e.g. ``recon.splits.include`` (messages).

    Returns:
        The checked :class:`Query`; nothing of it has been executed.

    Raises:
        QueryError: empty text, a syntax error, or any construct outside the language,
            naming ``parameter`` and the offending part.
    """
    if not isinstance(text, str):
        raise QueryError(f"{parameter}: expected a query string, got {type(text).__name__}")
    if not text.strip():
        raise QueryError(f"{parameter}: the query is empty")
    if len(text) > MAX_LENGTH:
        raise QueryError(f"{parameter}: the query is longer than {MAX_LENGTH} characters")
    _check_tokens(text, parameter)
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as error:
        raise QueryError(f"{parameter} {text!r}: not a valid expression ({error.msg})") from None
    columns: set[str] = set()
    _check_condition(tree.body, text.strip(), parameter, columns)
    return Query(text=text.strip(), parameter=parameter, tree=tree, columns=frozenset(columns))


def _check_condition(node: ast.AST, text: str, parameter: str, columns: set[str]) -> None:
    if isinstance(node, ast.BoolOp) and isinstance(node.op, (ast.And, ast.Or)):
        for value in node.values:
            _check_condition(value, text, parameter, columns)
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        _check_condition(node.operand, text, parameter, columns)
    elif isinstance(node, ast.Compare):
        operands = [node.left, *node.comparators]
        for index, op in enumerate(node.ops):
            left, right = operands[index], operands[index + 1]
            if isinstance(op, (ast.In, ast.NotIn)):
                side = f"the left side of {_SYMBOLS[type(op)]!r}"
                _check_column(left, text, parameter, columns, side)
                _check_sequence(right, text, parameter)
            elif type(op) in _COMPARISONS:
                _check_operand(left, text, parameter, columns)
                _check_operand(right, text, parameter, columns)
            else:
                raise _refuse(text, parameter, f"the operator {type(op).__name__}", node)
    elif isinstance(node, ast.Name):
        _check_column(node, text, parameter, columns, "a condition")
    else:
        raise _refuse(text, parameter, _describe(node), node)


def _check_column(
    node: ast.AST, text: str, parameter: str, columns: set[str], where: str
) -> None:
    if not isinstance(node, ast.Name):
        what = f"{_describe(node)} as {where} (expected a column name)"
        raise _refuse(text, parameter, what, node)
    if node.id.startswith("__"):
        raise _refuse(text, parameter, f"the name {node.id!r}", node)
    columns.add(node.id)


def _check_operand(node: ast.AST, text: str, parameter: str, columns: set[str]) -> None:
    if isinstance(node, ast.Name):
        _check_column(node, text, parameter, columns, "an operand")
    else:
        _literal(node, text, parameter)


def _check_sequence(node: ast.AST, text: str, parameter: str) -> None:
    if not isinstance(node, (ast.List, ast.Tuple)):
        raise _refuse(
            text, parameter, f"{_describe(node)} after 'in' (expected a list of literals)", node
        )
    for element in node.elts:
        _literal(element, text, parameter)


def _literal(node: ast.AST, text: str, parameter: str) -> Any:
    """The value of a literal node (a constant, optionally negated), or refuse."""
    if isinstance(node, ast.Constant) and isinstance(node.value, _LITERAL_TYPES):
        return node.value
    if (
        isinstance(node, ast.UnaryOp)
        and isinstance(node.op, (ast.USub, ast.UAdd))
        and isinstance(node.operand, ast.Constant)
        and isinstance(node.operand.value, (int, float))
        and not isinstance(node.operand.value, bool)
    ):
        value = node.operand.value
        return -value if isinstance(node.op, ast.USub) else value
    raise _refuse(text, parameter, f"{_describe(node)} (expected a column or a literal)", node)


def _describe(node: ast.AST) -> str:
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.BitAnd, ast.BitOr)):
        return "'&' (write 'and')" if isinstance(node.op, ast.BitAnd) else "'|' (write 'or')"
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Invert):
        return "'~' (write 'not')"
    if isinstance(node, ast.Name):
        return f"the column {node.id!r}"
    names = {
        ast.Attribute: "attribute access",
        ast.Call: "a function call",
        ast.Subscript: "a subscript",
        ast.Lambda: "a lambda",
        ast.ListComp: "a comprehension",
        ast.SetComp: "a comprehension",
        ast.DictComp: "a comprehension",
        ast.GeneratorExp: "a generator expression",
        ast.BinOp: "arithmetic",
        ast.IfExp: "a conditional expression",
        ast.NamedExpr: "an assignment expression",
        ast.Starred: "unpacking",
        ast.JoinedStr: "an f-string",
        ast.Dict: "a dict",
        ast.Set: "a set",
        ast.Await: "await",
    }
    for kind, name in names.items():
        if isinstance(node, kind):
            return name
    if isinstance(node, ast.Constant):
        return f"the literal {node.value!r} of type {type(node.value).__name__}"
    if isinstance(node, (ast.List, ast.Tuple)):
        return "a list"
    return f"a {type(node).__name__} expression"


class _Evaluator:
    """Computes a checked query's mask with pandas operations only."""

    def __init__(self, query: Query, frame: pd.DataFrame) -> None:
        self.query = query
        self.frame = frame

    def _error(self, what: str, node: ast.AST) -> QueryError:
        segment = ast.get_source_segment(self.query.text, node) or ""
        return QueryError(f"{self.query.parameter} {self.query.text!r}: {what} in {segment!r}")

    def condition(self, node: ast.AST) -> pd.Series:
        if isinstance(node, ast.BoolOp):
            parts = [self.condition(value) for value in node.values]
            result = parts[0]
            for part in parts[1:]:
                result = (result & part) if isinstance(node.op, ast.And) else (result | part)
            return result
        if isinstance(node, ast.UnaryOp):  # only `not` passes the check
            return ~self.condition(node.operand)
        if isinstance(node, ast.Name):
            column = self.frame[node.id]
            if not pd.api.types.is_bool_dtype(column):
                raise self._error(
                    f"column {node.id!r} (dtype {column.dtype}) is not boolean and cannot be "
                    "a condition by itself; compare it (e.g. == value)",
                    node,
                )
            return column.astype(bool)
        assert isinstance(node, ast.Compare)
        operands = [node.left, *node.comparators]
        result = pd.Series(True, index=self.frame.index)
        for index, op in enumerate(node.ops):
            result = result & self._compare(op, operands[index], operands[index + 1], node)
        return result

    def _value(self, node: ast.AST) -> Any:
        if isinstance(node, ast.Name):
            return self.frame[node.id]
        return _literal(node, self.query.text, self.query.parameter)

    def _compare(self, op: ast.cmpop, left: ast.AST, right: ast.AST, node: ast.AST) -> pd.Series:
        if isinstance(op, (ast.In, ast.NotIn)):
            values = [_literal(element, self.query.text, self.query.parameter)
                      for element in right.elts]  # type: ignore[attr-defined]
            column = self.frame[left.id]  # type: ignore[attr-defined]
            mask = column.isin(values)
            if any(value is None for value in values):
                mask = mask | column.isna()
            return ~mask if isinstance(op, ast.NotIn) else mask
        a, b = self._value(left), self._value(right)
        if a is None or b is None:
            other = b if a is None else a
            if isinstance(op, (ast.Eq, ast.NotEq)):
                if not isinstance(other, pd.Series):
                    equal = other is None
                    return pd.Series(equal == isinstance(op, ast.Eq), index=self.frame.index)
                missing = other.isna()
                return missing if isinstance(op, ast.Eq) else ~missing
            raise self._error(f"None cannot be ordered with {_SYMBOLS[type(op)]!r}", node)
        if not isinstance(a, pd.Series) and not isinstance(b, pd.Series):
            a = pd.Series([a] * len(self.frame), index=self.frame.index, dtype=object)
        try:
            result = _COMPARISONS[type(op)](a, b)
        except TypeError as error:
            raise self._error(f"values that cannot be compared ({error})", node) from None
        return pd.Series(np.asarray(result, dtype=bool), index=self.frame.index)


def evaluate_query(text: str | Query, frame: pd.DataFrame, parameter: str = "query") -> pd.Series:
    """The boolean mask (aligned with ``frame``) of the rows ``text`` selects.

    Raises:
        QueryError: see :func:`parse_query` and :meth:`Query.evaluate`.
    """
    query = text if isinstance(text, Query) else parse_query(text, parameter)
    return query.evaluate(frame)


def filter_frame(frame: pd.DataFrame, text: str | Query, parameter: str = "query") -> pd.DataFrame:
    """The rows of ``frame`` that ``text`` selects (a safe ``DataFrame.query``)."""
    return frame[evaluate_query(text, frame, parameter).to_numpy()]


def checked_query(text: str) -> str:
    """``text`` unchanged once it parses in the query language (for pydantic validators).

    Raises:
        QueryError: anything outside the language; nothing of it ever runs.
    """
    parse_query(text, "query")
    return text


#: A parameter holding a query: refused at session start unless it is in the language.
SafeQuery = Annotated[str, AfterValidator(checked_query)]
