"""The policy expression language: what it evaluates, and what it refuses to compile."""

from __future__ import annotations

import re

import pytest

from provtrack.domain.expressions import InvalidExpression, compile_expression

VARIABLES = frozenset({"order"})
ORDER = {
    "state": "inProgress",
    "level": "inJeopardy",
    "priority": "1",
    "category": "business",
    "timeInState": 3 * 3600,
    "characteristic": {"bandwidth": 1000, "vlan": "120"},
    "relatedParty": {"customer": "ACME"},
}


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ('order.level in ["inJeopardy", "late"] && order.priority == "1"', True),
        ('order.level == "late" || order.category == "residential"', False),
        ('!(order.state == "held")', True),
        ('order.state != "held" and not order.priority == "2"', True),
        ('order.timeInState > duration("PT2H")', True),
        ('order.timeInState > duration("P1D")', False),
        ("has(order.characteristic.vlan) && order.characteristic.bandwidth >= 1000", True),
        ("has(order.characteristic.qos)", False),
        ('order.characteristic["vlan"] == "120"', True),
        ('lower(order.relatedParty.customer) == "acme"', True),
        ("size(order.characteristic) == 2", True),
        ('order.nothing.deeper == "x"', False),
        ("order.priority > 5", False),  # a string against a number is false, not an error
        ('order.note == "text with && and || and !"', False),
        ("true && !false", True),
    ],
)
def test_expressions_evaluate_against_the_order(expression: str, expected: bool) -> None:
    assert compile_expression(expression, variables=VARIABLES)({"order": ORDER}) is expected


@pytest.mark.parametrize(
    ("expression", "complaint"),
    [
        ("__import__('os').system('true')", "only duration(), has(), size(), lower()"),
        ("order.__class__", "names starting with _"),
        ("customer.name == 'x'", "unknown name 'customer'"),
        ("[x for x in order]", "not allowed"),
        ("order.priority ** 99", "not allowed"),
        ("lambda: 1", "not allowed"),
        ('duration("two hours")', "ISO 8601 duration"),
        ("order.level ==", "cannot parse"),
        ("1 + " * 400 + "1", "parts"),
        ("", "required"),
    ],
)
def test_anything_outside_the_language_is_refused_when_compiled(expression: str, complaint: str) -> None:
    with pytest.raises(InvalidExpression, match=re.escape(complaint)):
        compile_expression(expression, variables=VARIABLES)


@pytest.mark.parametrize(
    ("expression", "column", "complaint"),
    [
        ("order.level ==", 15, "the expression ends too early at column 15"),
        ('order.level == "late" &&', 25, "the expression ends too early at column 25"),
        ("  order.level ==   ", 17, "the expression ends too early at column 17"),
        ('order.level = "late"', 13, "invalid syntax (compare with ==) at column 13"),
        ('order.level == "late" || && order.priority == "1"', 26, "invalid syntax at column 26"),
        ('!order.level == "x" order.priority', 21, "invalid syntax at column 21"),
        ('order.level == "café" && ==', 26, "invalid syntax at column 26"),
        ("order.level == 1 1", 18, "invalid syntax at column 18"),
        ('has(order.x) && size(order.level == "x"', 21, "'(' was never closed at column 21"),
        ('order.level == "late', 16, "unterminated string literal at column 16"),
        ("order.level == )", 16, "unmatched ')' at column 16"),
    ],
)
def test_a_syntax_error_names_the_column_where_the_author_wrote_it(
    expression: str, column: int, complaint: str
) -> None:
    with pytest.raises(InvalidExpression) as caught:
        compile_expression(expression, variables=VARIABLES)
    assert caught.value.column == column
    assert str(caught.value) == f"cannot parse {expression!r}: {complaint}"


def test_a_syntax_error_in_an_expression_on_several_lines_names_its_line_and_column() -> None:
    expression = 'order.level == "late"\n  && order.priority ==\n'
    with pytest.raises(InvalidExpression, match=r"ends too early at line 2, column 23$") as caught:
        compile_expression(expression, variables=VARIABLES)
    assert (caught.value.line, caught.value.column) == (2, 23)


def test_an_expression_may_break_lines_between_its_parts() -> None:
    expression = 'order.level == "inJeopardy"\n  && order.priority == "1"\n'
    assert compile_expression(expression, variables=VARIABLES)({"order": ORDER}) is True
