"""Column names, file formats and Spark schemas for Avazu-style click data.

Two on-disk formats are supported and both normalise to one canonical schema:

``raw``
    The Kaggle Avazu ``train`` file: 24 columns, ``id`` an unsigned 64-bit integer kept as a
    string, ``click`` 0/1, ``hour`` as ``YYMMDDHH`` (UTC).
``course``
    The course's derived file: 26 columns, no ``id``, ``click`` as ``TRUE``/``FALSE`` and the
    event hour split into ``month``, ``dayofweek`` (Monday=0), ``day`` and ``hour``.

The canonical schema (:data:`CANONICAL_COLUMNS`) has ``label`` 0/1, ``event_time`` as a UTC
timestamp, integer codes as integers and ids as strings. ``id`` is null for course data.
"""

from __future__ import annotations

from typing import Dict, Tuple

#: Hashed (8 lowercase hex characters) identifier columns, in file order.
HEX_COLUMNS: Tuple[str, ...] = (
    "site_id",
    "site_domain",
    "site_category",
    "app_id",
    "app_domain",
    "app_category",
    "device_id",
    "device_ip",
    "device_model",
)

#: Integer-coded categorical columns, in file order.
INT_COLUMNS: Tuple[str, ...] = (
    "C1",
    "banner_pos",
    "device_type",
    "device_conn_type",
    "C14",
    "C15",
    "C16",
    "C17",
    "C18",
    "C19",
    "C20",
    "C21",
)

#: The feature columns both formats share, in file order (between the label and time columns).
FEATURE_COLUMNS: Tuple[str, ...] = (
    "C1",
    "banner_pos",
    "site_id",
    "site_domain",
    "site_category",
    "app_id",
    "app_domain",
    "app_category",
    "device_id",
    "device_ip",
    "device_model",
    "device_type",
    "device_conn_type",
    "C14",
    "C15",
    "C16",
    "C17",
    "C18",
    "C19",
    "C20",
    "C21",
)

#: The Kaggle Avazu train header (24 columns).
RAW_COLUMNS: Tuple[str, ...] = ("id", "click", "hour") + FEATURE_COLUMNS

#: The course file header (26 columns).
COURSE_COLUMNS: Tuple[str, ...] = (
    ("click",) + FEATURE_COLUMNS + ("month", "dayofweek", "day", "hour")
)

#: Header spellings seen in real course files, mapped to the correct column name.
COURSE_HEADER_ALIASES: Dict[str, str] = {"add_category": "app_category"}

#: Column holding the generator's true click probability when it travels with the data.
TRUTH_COLUMN = "p_click"

#: The canonical columns every loader returns, in order.
CANONICAL_COLUMNS: Tuple[str, ...] = ("id", "label", "event_time") + FEATURE_COLUMNS

#: "Missing" hashes: the value a column takes when the row has no such entity.
NULL_SITE = {"site_id": "85f751fd", "site_domain": "c4e18dd6", "site_category": "50e219e0"}
NULL_APP = {"app_id": "ecad2386", "app_domain": "7801e8d9", "app_category": "07d7df22"}
NULL_DEVICE_ID = "a99f214a"

#: The file formats the loader reads (the canonical schema is also read back from Parquet).
FORMATS = ("raw", "course")


def canonical_schema():  # -> pyspark.sql.types.StructType (pyspark imported lazily)
    """Return the canonical Spark schema every loader produces.

    Every field is nullable as far as Spark knows; the loader only accepts rows with every value.

    Examples
    --------
    >>> [f.name for f in canonical_schema().fields][:4]
    ['id', 'label', 'event_time', 'C1']
    """
    from pyspark.sql import types as T

    fields = [
        T.StructField("id", T.StringType(), True),
        T.StructField("label", T.IntegerType(), True),
        T.StructField("event_time", T.TimestampType(), True),
    ]
    for name in FEATURE_COLUMNS:
        kind = T.StringType() if name in HEX_COLUMNS else T.IntegerType()
        fields.append(T.StructField(name, kind, True))
    return T.StructType(fields)
