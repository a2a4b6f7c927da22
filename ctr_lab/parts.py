"""The part files of a folder must agree: one kind of file, one header or one Parquet schema.

Spark reads a folder as one table: it checks nothing but the first file's header (CSV) or
schema (Parquet) and reads every other file the same way, so a part file with its columns in
another order fills the wrong columns, a Parquet file among CSV files is read as text, and a
stray ``README.txt`` becomes rows. Only the files' first bytes (their headers) and Parquet
footers are read here, never their rows.
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Dict, List, Optional, Sequence, Tuple

from ctr_lab.errors import DataLoadError

#: (path, container, header columns or None for Parquet) of one part file, as sniffed.
Part = Tuple[str, str, Optional[List[str]]]

_MOVE_IT = "or move it out of the folder (or name it with a leading _ or ., which Spark skips)"


def check_parts(parts: Sequence[Part], footers: bool = True) -> None:
    """Refuse a folder whose part files do not all agree, naming an odd one out.

    The files are compared with the most common kind and header among them, ``part-*`` files
    first on a tie (Spark's name for the files it writes): a stray ``README.txt`` is the odd one.
    With ``footers`` (local files), Parquet files must also have the same columns and types.

    Examples
    --------
    >>> header = ["id", "click", "hour"]
    >>> check_parts([("d/part-0.csv", "csv", header), ("d/part-1.csv.gz", "gzip csv", header)])
    >>> check_parts([("d/part-0.csv", "csv", header), ("d/part-1.csv", "csv", ["id", "hour"])])
    Traceback (most recent call last):
    ...
    ctr_lab.errors.DataLoadError: d/part-1.csv: its header differs from part-0.csv's (column 2 ...
    """

    def shape(part: Part) -> Tuple[bool, Tuple[str, ...]]:
        return part[1] == "parquet", tuple(part[2] or ())

    counts = Counter(shape(p) for p in parts)
    reference = max(
        parts, key=lambda p: (counts[shape(p)], os.path.basename(p[0]).startswith("part-"))
    )
    first, kind, header = reference
    name = os.path.basename(first)
    for path, other_kind, other_header in parts:
        if (kind == "parquet") != (other_kind == "parquet"):
            raise DataLoadError(
                path,
                f"a {_kind(other_kind)} file among {_kind(kind)} part files (like {name})",
                f"keep one kind of file per folder: convert it, {_MOVE_IT}",
            )
        if header is not None and other_header != header:
            assert other_header is not None
            raise DataLoadError(
                path,
                f"its header differs from {name}'s ({_difference(name, header, other_header)}), "
                "so its values would be read into the wrong columns",
                f"write every part file with the same header in the same order, {_MOVE_IT}",
            )
    if kind == "parquet" and footers:
        _check_parquet_schemas(first, [path for path, _, _ in parts])


def _kind(container: str) -> str:
    return "Parquet" if container == "parquet" else "CSV"


def _difference(name: str, header: List[str], other: List[str]) -> str:
    """Where ``other`` first differs from ``header`` (that of file ``name``)."""
    for i, (want, got) in enumerate(zip(header, other)):
        if want != got:
            return f"column {i + 1} is {got!r} where {name} has {want!r}"
    return f"{len(other)} columns where {name} has {len(header)}"


def _check_parquet_schemas(reference: str, paths: Sequence[str]) -> None:
    """Every Parquet file has the reference's columns and types (read by name: in any order)."""
    first = _parquet_columns(reference)
    name = os.path.basename(reference)
    for path in paths:
        other = _parquet_columns(path)
        if other != first:
            why = _schema_difference(name, first, other)
            raise DataLoadError(
                path,
                f"its Parquet schema differs from {name}'s ({why})",
                f"write every part file with the same schema, {_MOVE_IT}",
            )


def _parquet_columns(path: str) -> Dict[str, str]:
    """A Parquet file's column types by name, from its footer alone."""
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
    except Exception as exc:  # pyarrow raises several kinds for a damaged footer
        raise DataLoadError(
            path, f"cannot read its Parquet footer ({exc})", "re-write the Parquet file"
        ) from None
    return {f.name: str(f.type) for f in schema}


def _schema_difference(name: str, first: Dict[str, str], other: Dict[str, str]) -> str:
    for column, kind in other.items():
        if column not in first:
            return f"column {column} is not in {name}"
        if first[column] != kind:
            return f"column {column} is {kind} where {name} has {first[column]}"
    missing = next(c for c in first if c not in other)
    return f"it lacks {name}'s column {missing}"
