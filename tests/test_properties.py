"""Property-based tests: the row transforms keep every row, add no nulls, and keep the schema."""

from __future__ import annotations

import datetime as dt

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ctr_lab import schema as S
from ctr_lab.features import ROW_FEATURE_COLUMNS, with_all_row_features

HEX = st.text(alphabet="0123456789abcdef", min_size=8, max_size=8)


def _hex(column: str):
    """Mostly random ids, often the null hashes, so both site and app traffic appear."""
    nulls = [v for v in (S.NULL_SITE.get(column), S.NULL_APP.get(column)) if v]
    if column == "device_id":
        nulls.append(S.NULL_DEVICE_ID)
    return st.one_of(HEX, st.sampled_from(nulls)) if nulls else HEX


ROW = st.fixed_dictionaries(
    {
        "id": st.integers(0, 2**64 - 1).map(str),
        "label": st.integers(0, 1),
        "event_time": st.datetimes(dt.datetime(2014, 10, 21), dt.datetime(2014, 10, 31)),
        **{c: _hex(c) for c in S.HEX_COLUMNS},
        **{c: st.integers(-1, 100_248) for c in S.INT_COLUMNS},
    }
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(ROW, min_size=0, max_size=40))
def test_row_features_keep_rows_add_no_nulls_and_keep_the_schema(spark, rows):
    ordered = [tuple(r[c] for c in S.CANONICAL_COLUMNS) for r in rows]
    df = spark.createDataFrame(ordered, S.canonical_schema())
    out = with_all_row_features(df)
    # The schema is stable: every input column is kept as it was, the feature columns follow.
    assert out.schema.fields[: len(df.schema.fields)] == df.schema.fields
    assert set(ROW_FEATURE_COLUMNS) <= set(out.columns)
    got = out.collect()
    # No row lost or duplicated: the input rows come back exactly, once each.
    assert sorted(tuple(r[c] for c in S.CANONICAL_COLUMNS) for r in got) == sorted(ordered)
    # No nulls introduced.
    for row in got:
        assert all(row[c] is not None for c in ROW_FEATURE_COLUMNS), row
