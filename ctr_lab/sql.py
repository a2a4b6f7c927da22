r"""SQL text for Spark's parser: identifiers and literals.

``ctr_lab`` writes the expressions of its wide projections (the load's checks, the hashed
vectors) as SQL text. A column built in Python costs a call through Py4J for each function, name
and literal in it (about a millisecond per function on a local driver); the JVM parses the
same expression from its text in one call (BENCHMARKS.md, "A load's expressions in SQL").

Examples
--------
>>> name("missing:C1"), text("it's")
('`missing:C1`', "'it\\'s'")
>>> is_in("upper(click)", ["1", "TRUE"])
"upper(click) IN ('1', 'TRUE')"
"""

from __future__ import annotations

from typing import Iterable, List

__all__ = ["is_in", "name", "names", "text"]


def name(column: str) -> str:
    """``column`` as an SQL identifier: in backticks, a backtick in it doubled."""
    return "`" + column.replace("`", "``") + "`"


def names(columns: Iterable[str]) -> List[str]:
    """Each column as an identifier: ``DataFrame.selectExpr(*names(cols))`` selects them."""
    return [name(c) for c in columns]


def text(value: str) -> str:
    """``value`` as an SQL string literal, as Spark's parser reads one by default.

    A backslash escapes the next character (``spark.sql.parser.escapedStringLiterals`` is false,
    Spark's default), so a backslash and a quote in ``value`` are escaped.
    """
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def is_in(expr: str, values: Iterable[str]) -> str:
    """``expr IN (values...)``, the values as string literals."""
    return f"{expr} IN ({', '.join(text(v) for v in values)})"
