"""ctr_lab.sql: what Spark's own parser reads back from the text it builds."""

from __future__ import annotations

from ctr_lab import sql

#: Text a load's literals hold (regular expressions, reason keys, U+FFFD), and quotes.
AWKWARD = ["^[0-9]{1,7}\\z", "it's", "a\\'b", "\\", "missing:C1", "\ufffd", "", "--", "`x`"]


def test_each_literal_reads_back_as_its_value(spark):
    row = spark.sql(
        "SELECT " + ", ".join(f"{sql.text(v)} AS v{i}" for i, v in enumerate(AWKWARD))
    ).first()
    assert list(row) == AWKWARD


def test_each_name_selects_its_column_and_in_tests_membership(spark):
    columns = ["reason", "missing:C1", "a`b", "with space"]
    df = spark.createDataFrame([tuple(range(len(columns)))], [f"c{i}" for i in range(len(columns))])
    df = df.toDF(*columns)
    assert df.selectExpr(*sql.names(columns)).columns == columns
    assert list(df.selectExpr(*sql.names(reversed(columns))).first()) == [3, 2, 1, 0]
    rows = spark.createDataFrame([("1",), ("TRUE",), ("true",), (None,)], "v string")
    got = [r[0] for r in rows.selectExpr(sql.is_in("v", ["1", "TRUE"])).collect()]
    assert got == [True, True, False, None]
