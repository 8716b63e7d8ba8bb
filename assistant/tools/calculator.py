"""A safe arithmetic evaluator over Python's ``ast``: no ``eval``, bounded in every direction."""

from __future__ import annotations

import ast
import math
import operator
import time
from collections.abc import Callable
from typing import Any

from langchain_core.tools import BaseTool, StructuredTool

MAX_EXPRESSION_CHARS = 200
MAX_NODES = 100
MAX_EXPONENT = 1000
MAX_MAGNITUDE = 10**100
MAX_DIGITS = 100  # log10 of MAX_MAGNITUDE
MIN_DIGITS = -307  # below about 1e-308 floats lose precision, then become 0 (a wrong answer)
MAX_ROUND_DIGITS = 100
MAX_SECONDS = 0.5

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}
_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "sqrt": math.sqrt,
    "abs": abs,
    "round": round,
    "floor": math.floor,
    "ceil": math.ceil,
    "log": math.log,
    "log10": math.log10,
    "exp": math.exp,
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
    "min": min,
    "max": max,
}
_CONSTANTS = {"pi": math.pi, "e": math.e}


class CalculatorError(ValueError):
    """The expression is not something the calculator evaluates; the message says why."""


def evaluate(expression: str) -> int | float:
    """Evaluate an arithmetic expression safely.

    Supports numbers, ``+ - * / // % **`` (``^`` means power), parentheses, the constants
    ``pi`` and ``e`` and a few functions (sqrt, abs, round, floor, ceil, log, log10, exp,
    sin, cos, tan, min, max). Thousands separators like ``1,000`` are not numbers: write 1000.

    Raises:
        CalculatorError: the expression is empty, too long, malformed, uses anything outside
            the whitelist, or its result or an exponent is too large (or too close to zero for
            a float), or round() is asked for more than 100 digits.
    """
    text = expression.strip().replace("^", "**").replace("×", "*").replace("÷", "/")
    if not text:
        raise CalculatorError("empty expression; give arithmetic such as 17*23")
    if len(text) > MAX_EXPRESSION_CHARS:
        raise CalculatorError(f"expression longer than {MAX_EXPRESSION_CHARS} characters")
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError) as exc:
        raise CalculatorError(f"not a valid expression: {expression.strip()!r}") from exc
    if sum(1 for _ in ast.walk(tree)) > MAX_NODES:
        raise CalculatorError(f"expression has more than {MAX_NODES} parts")
    deadline = time.monotonic() + MAX_SECONDS
    try:
        result = _eval(tree.body, deadline)
    except CalculatorError:
        raise
    except ZeroDivisionError as exc:
        raise CalculatorError("division by zero") from exc
    except (OverflowError, MemoryError) as exc:
        raise CalculatorError("the result is too large") from exc
    except (ValueError, TypeError, ArithmeticError) as exc:
        raise CalculatorError(f"cannot evaluate: {exc}") from exc
    if isinstance(result, complex):
        raise CalculatorError("the result is a complex number")
    if isinstance(result, bool) or not isinstance(result, int | float):
        raise CalculatorError("the result is not a number")
    if isinstance(result, float) and not math.isfinite(result):
        raise CalculatorError("the result is not a finite number")
    return result


def _check(value: Any) -> Any:
    if isinstance(value, int | float) and abs(value) > MAX_MAGNITUDE:
        raise CalculatorError("the result is too large (more than 1e100)")
    return value


def _check_power(base: Any, exponent: Any) -> None:
    """Refuse a power before computing it when its size alone would be too large or too small.

    The size is known from logarithms: |base ** exponent| = 10 ** (exponent * log10|base|).
    Checking only |base| > 1 called 2**-1000 "too large" (it is tiny), and tiny results that a
    float cannot hold come out as 0, a wrong answer, so they are refused too.
    """
    if isinstance(exponent, complex) or isinstance(base, complex):
        return  # reported as "complex" once evaluated
    if abs(exponent) > MAX_EXPONENT:
        raise CalculatorError(f"exponent larger than {MAX_EXPONENT}")
    if base == 0 or exponent == 0:
        return
    digits = exponent * math.log10(abs(base))
    if digits > MAX_DIGITS:
        raise CalculatorError("the result is too large (more than 1e100)")
    if digits < MIN_DIGITS:
        raise CalculatorError(
            f"the result is too close to zero to compute (about 1e{digits:.0f}; "
            f"the smallest shown is 1e{MIN_DIGITS})"
        )


def _check_round_digits(digits: Any) -> None:
    """round(x, -n) computes 10**n first: with n = 10**18 it would never finish."""
    if isinstance(digits, int) and abs(digits) > MAX_ROUND_DIGITS:
        raise CalculatorError(
            f"round() takes between -{MAX_ROUND_DIGITS} and {MAX_ROUND_DIGITS} digits"
        )


def _eval(node: ast.AST, deadline: float) -> Any:
    if time.monotonic() > deadline:
        raise CalculatorError("the expression takes too long to evaluate")
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            raise CalculatorError(f"only numbers are allowed, not {node.value!r}")
        return _check(node.value)
    if isinstance(node, ast.Name):
        if node.id in _CONSTANTS:
            return _CONSTANTS[node.id]
        raise CalculatorError(f"unknown name {node.id!r}; only pi and e are defined")
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _check(_UNARY[type(node.op)](_eval(node.operand, deadline)))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left, deadline), _eval(node.right, deadline)
        if isinstance(node.op, ast.Pow):
            _check_power(left, right)
        result = _BINARY[type(node.op)](left, right)
        if result == 0 and left != 0 and right != 0 and isinstance(node.op, ast.Mult | ast.Div):
            # 1e-200 * 1e-200 underflows to 0.0: say so instead of answering 0.
            raise CalculatorError("the result is too close to zero to compute")
        return _check(result)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
        func = _FUNCTIONS.get(node.func.id)
        if func is None:
            known = ", ".join(sorted(_FUNCTIONS))
            raise CalculatorError(f"unknown function {node.func.id!r}; known: {known}")
        args = [_eval(arg, deadline) for arg in node.args]
        if func is round and len(args) == 2:
            _check_round_digits(args[1])
        return _check(func(*args))
    raise CalculatorError(f"unsupported syntax: {type(node).__name__}")


def format_number(value: int | float) -> str:
    """Show integers exactly and floats without float noise (0.1+0.2 gives 0.3)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, float):
        return f"{value:.12g}"
    return str(value)


def calculator(expression: str) -> str:
    """Evaluate arithmetic, e.g. 17*23 or (4+5)/3 or sqrt(2). Input: the expression only."""
    try:
        return format_number(evaluate(expression))
    except CalculatorError as exc:
        return f"error: {exc}"


def make_calculator_tool() -> BaseTool:
    """The calculator as a LangChain tool; its input is limited to arithmetic characters."""
    return StructuredTool.from_function(
        calculator,
        metadata={"gbnf_input": "[0-9+*/%^().-]{1,40}"},
    )
