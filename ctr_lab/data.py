"""Load Avazu-style click data into one canonical Spark schema, with a report of every row.

:func:`load` reads the raw Kaggle Avazu train format and the course's 26-column format, from CSV,
gzip CSV or Parquet, local paths or ``s3://``/``s3a://`` URIs. It detects the format from the
header, never infers a schema, repairs the ids a spreadsheet damaged where that is possible, and
keeps every row it cannot accept aside with its reason. Problems that make the whole file unusable
raise :class:`~ctr_lab.errors.DataLoadError` with the file, the column or value, and the fix.

Examples
--------
>>> import ctr_lab as cl
>>> loaded = cl.load("course_10k", spark)
>>> print(loaded.report)
load report: course_10k (data_samples/course_10k.csv)
  format            course (26 columns, click TRUE/FALSE), csv
  rows read         10,000
  rows accepted     10,000
  rows rejected     0
  clicks            1,672 (click rate 0.1672)
  event hours       2014-10-21 00:00 .. 2014-10-30 23:00 UTC
  ids repaired      site_id 4, device_id 1, device_ip 17, device_model 40
  ids unrepairable  site_id 41, app_id 1, app_domain 3, device_id 7, device_ip 52,
                    device_model 71 (kept as-is)
>>> train_df = loaded.df
>>> train_df.columns[:4]
['id', 'label', 'event_time', 'C1']
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import uuid
import zlib
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from ctr_lab import schema as S
from ctr_lab import sql
from ctr_lab.errors import DataLoadError, spark_problem
from ctr_lab.fs import NO_FILESYSTEM, NO_FILESYSTEM_FIX

#: The reasons a row can be rejected for, as (key, what it means). Keys with a column name
#: (``missing:C14``) are expanded per column.
REJECT_REASONS = {
    "malformed_row": "wrong number of fields",
    "repeated_header": "a header line repeated inside the data",
    "missing": "empty value",
    "not_integer": "not an integer",
    "out_of_range": "an integer out of the column's range (-2147483648 .. 2147483647)",
    "bad_time": "event time not a valid YYMMDDHH (raw) or month/day/hour (course)",
    "bad_id": "id is not an unsigned integer",
    "not_number": "not a number",
}

#: The column and text, per format, of a reason whose key names no column.
_REASON_COLUMNS = {
    "bad_id": {"raw": ("id", "not an unsigned integer")},
    "bad_time": {
        "raw": ("hour", "event time not a valid YYMMDDHH"),
        "course": ("month/day/hour", "event time not a valid month/day/hour"),
    },
}
#: How many distinct example values the report keeps per reason, and how much of each.
_EXAMPLES = 2
_EXAMPLE_CHARS = 60

_LABEL_TRUE = ("1", "TRUE")
_LABEL_FALSE = ("0", "FALSE")
#: An id's shape (the load's ``_MARK`` columns): as it should be, digits to left-pad, upper case
#: to lower, or none of these (kept as read and counted).
_HEX_FINE, _HEX_PADDED, _HEX_UPPER, _HEX_BAD = 0, 1, 2, 3
#: Prefix of the load's working columns (each row's time, label and id shapes).
_MARK = "_ctr_lab_"
#: HotSpot's ``HugeMethodLimit``: the JVM never compiles a method longer than 8,000 bytes of
#: bytecode. See :func:`_compiled_by_the_jvm`.
_HUGE_METHOD_LIMIT = 8000
_CORRUPT = "_corrupt_record"
_SNIFF_BYTES = 1 << 16


@dataclass
class LoadReport:
    """What a load did with every row of a file.

    ``rows_read == rows_accepted + rows_rejected`` always holds; ``rejected_by_reason`` sums to
    ``rows_rejected``. Ids a spreadsheet damaged are counted per column: ``ids_repaired`` were
    restored (leading zeros put back, upper case lowered), ``ids_unrepairable`` (``2.53E+79``) are
    kept as they are, as their own category level. ``rejected_examples`` holds, per reason of
    ``rejected_by_reason`` that is about a value, up to two of the values rejected (the least and
    the greatest as text; a long one cut to 60 characters).
    """

    path: str
    format: str
    container: str
    rows_read: int
    rows_accepted: int
    rows_rejected: int
    rejected_by_reason: Dict[str, int]
    clicks: int
    click_rate: Optional[float]
    first_event: Optional[str]
    last_event: Optional[str]
    ids_repaired: Dict[str, int] = field(default_factory=dict)
    ids_unrepairable: Dict[str, int] = field(default_factory=dict)
    header_fixes: List[str] = field(default_factory=list)
    ignored_columns: List[str] = field(default_factory=list)
    has_truth: bool = False
    rejected_examples: Dict[str, List[str]] = field(default_factory=dict)

    def to_dict(self) -> Dict[str, Any]:
        """Return the report as plain JSON-serialisable data."""
        return asdict(self)

    def to_json(self) -> str:
        """Return the report as indented JSON."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)

    def rejections(self) -> Optional[str]:
        """One line, ``FILE: N rows rejected (count reason; ...)``, or None when none was.

        Examples
        --------
        >>> report = LoadReport("a.csv", "raw", "csv", 5, 2, 3, {"bad_time": 2, "bad_id": 1},
        ...                     0, None, None, None)
        >>> print(report.rejections())
        a.csv: 3 rows rejected (2 event time not a valid YYMMDDHH (raw) or month/day/hour
        (course); 1 id is not an unsigned integer)
        """
        if not self.rows_rejected:
            return None
        counts = "; ".join(f"{n:,} {describe_reason(r)}" for r, n in self._by_count())
        return f"{self.path}: {self.rows_rejected:,} rows rejected ({counts})"

    def nothing_accepted(self) -> Optional[DataLoadError]:
        """The error for a file of which no row was accepted, naming the commonest reason."""
        if self.rows_accepted:
            return None
        if not self.rows_read:
            return DataLoadError(
                self.path, "no row was accepted: the file holds no data rows", "add rows to it"
            )
        reason, count = self._by_count()[0]
        return DataLoadError(
            self.path,
            f"no row was accepted: all {self.rows_read:,} rows were rejected, "
            f"{count:,} for {describe_reason(reason)!r}",
            "correct those rows (`ctr-lab inspect FILE` counts every reason) or use another file",
        )

    def _by_count(self) -> List[Tuple[str, int]]:
        return sorted(self.rejected_by_reason.items(), key=lambda kv: -kv[1])

    def __str__(self) -> str:
        fmt = {
            "raw": "raw (Kaggle Avazu train, 24 columns)",
            "course": "course (26 columns, click TRUE/FALSE)",
            "canonical": "canonical (ctr_lab Parquet)",
        }.get(self.format, self.format)
        lines = [
            f"load report: {self.path}",
            f"  format            {fmt}, {self.container}",
            f"  rows read         {self.rows_read:,}",
            f"  rows accepted     {self.rows_accepted:,}",
            f"  rows rejected     {self.rows_rejected:,}",
        ]
        for reason, count in sorted(self.rejected_by_reason.items(), key=lambda kv: -kv[1]):
            examples = self.rejected_examples.get(reason)
            shown = f" (e.g. {', '.join(repr(v) for v in examples)})" if examples else ""
            lines.append(f"    {count:>12,}  {describe_reason(reason, self.format)}{shown}")
        if self.click_rate is not None:
            lines.append(f"  clicks            {self.clicks:,} (click rate {self.click_rate:.4f})")
        if self.first_event:
            lines.append(f"  event hours       {self.first_event} .. {self.last_event} UTC")
        if any(self.ids_repaired.values()):
            lines.append(f"  ids repaired      {_per_column(self.ids_repaired)}")
        if any(self.ids_unrepairable.values()):
            lines.append(f"  ids unrepairable  {_per_column(self.ids_unrepairable)} (kept as-is)")
        for fix in self.header_fixes:
            lines.append(f"  header fixed      {fix}")
        if self.ignored_columns:
            lines.append(f"  columns ignored   {', '.join(self.ignored_columns)}")
        if self.has_truth:
            lines.append(
                f"  truth column      {S.TRUTH_COLUMN} (generator's true click probability)"
            )
        return "\n".join(lines)


@dataclass
class Loaded:
    """The result of :func:`load`: accepted rows, rejected rows with reasons, and the report.

    ``kept_in`` is the folder of the validated copy when :func:`load` had a ``cache_dir``.
    """

    df: Any  # pyspark.sql.DataFrame in the canonical schema
    rejected_df: Any  # the rejected rows as text, with a ``reason`` column
    report: LoadReport
    kept_in: Optional[str] = None


def describe_reason(reason: str, fmt: Optional[str] = None) -> str:
    """Return the readable form of a rejection reason key such as ``not_integer:C14``.

    With ``fmt`` (``"raw"`` or ``"course"``), a reason whose key names no column is told with
    the column of that format.

    Examples
    --------
    >>> describe_reason("not_integer:C14")
    'C14: not an integer'
    >>> describe_reason("bad_time", "raw")
    'hour: event time not a valid YYMMDDHH'
    """
    key, _, column = reason.partition(":")
    text = REJECT_REASONS.get(key, key)
    if not column and fmt in _REASON_COLUMNS.get(key, {}):
        column, text = _REASON_COLUMNS[key][fmt]
    return f"{column}: {text}" if column else text


def _rejected_value(reason: str, found: str) -> Optional[str]:
    """The text a row is rejected for with ``reason``, in SQL; None if there is no one.

    An empty value or a repeated header has no value to show; a malformed row shows its line.
    """
    key, _, column = reason.partition(":")
    if key == "malformed_row":
        return sql.name(_CORRUPT)
    if key == "bad_time" and found == "course":
        return f"concat_ws('/', {', '.join(sql.name(n) for n in ('month', 'day', 'hour'))})"
    if found in _REASON_COLUMNS.get(key, {}):
        return sql.name(_REASON_COLUMNS[key][found][0])
    if key in ("not_integer", "out_of_range", "not_number"):
        return sql.name(column)
    return None


def _per_column(counts: Dict[str, int]) -> str:
    return ", ".join(f"{col} {n:,}" for col, n in counts.items() if n)


# ----------------------------------------------------------------------------------------------
# Finding the files and sniffing what they are
# ----------------------------------------------------------------------------------------------


def _is_remote(path: str) -> bool:
    return "://" in path and not path.startswith("file://")


def _local_files(path: str) -> List[str]:
    """The data files behind a local path: the file itself, or the part files of a folder."""
    from ctr_lab.fs import is_data_file

    if os.path.isdir(path):
        names = sorted(
            n for n in os.listdir(path) if is_data_file(n) and os.path.isfile(os.path.join(path, n))
        )
        return [os.path.join(path, n) for n in names]
    return [path]


def _sniff_local(path: str, shown: str) -> Tuple[str, Optional[List[str]]]:
    """Return (container, header columns or None for Parquet) of a local file."""
    with open(path, "rb") as fh:
        head = fh.read(_SNIFF_BYTES)

    def inflate() -> bytes:
        with gzip.open(path, "rb") as gz:
            return gz.read(_SNIFF_BYTES)

    return _sniff_head(head, path, shown, inflate)


def _sniff_head(
    head: bytes, path: str, shown: str, inflate: Callable[[], bytes]
) -> Tuple[str, Optional[List[str]]]:
    """(container, header or None for Parquet) from a file's first bytes; ``inflate`` gives
    the first bytes of a gzip file's text."""
    if not head:
        raise DataLoadError(shown, "the file is empty (0 bytes)", "re-create or re-download it")
    if head[:4] == b"PAR1":
        return "parquet", None
    if path.endswith(".parquet"):
        raise DataLoadError(
            shown,
            "the name ends in .parquet but the file is not Parquet (it does not start with "
            "Parquet's magic bytes PAR1)",
            "rename it to .csv if it is CSV text, or re-write it as Parquet",
        )
    container = "csv"
    if head[:2] == b"\x1f\x8b":
        container = "gzip csv"
        try:
            head = inflate()
        except (OSError, EOFError, zlib.error) as exc:
            raise DataLoadError(
                shown, f"the gzip archive is damaged ({exc})", "re-download or re-compress the file"
            ) from None
        if not head:
            raise DataLoadError(shown, "the gzip archive holds an empty file", "re-create it")
    elif path.endswith(".gz"):
        raise DataLoadError(
            shown, "the name ends in .gz but the file is not gzip data", "rename or re-compress it"
        )
    if b"\x00" in head:
        raise DataLoadError(
            shown,
            "not a CSV or Parquet file (it holds binary data)",
            "point to an Avazu CSV, gzip CSV or Parquet file",
        )
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A cut in the middle of a multi-byte character at the sniff boundary is fine.
        if exc.start < len(head) - 4:
            where = f"byte {exc.start:,}" + (" of its text" if container == "gzip csv" else "")
            raise DataLoadError(
                shown, f"{_NOT_UTF8}: {where} is 0x{head[exc.start]:02x}", _UTF8_FIX
            ) from None
        text = head[: exc.start].decode("utf-8")
    first_line = text.lstrip("\ufeff").splitlines()[0] if text.strip() else ""
    if not first_line.strip():
        raise DataLoadError(
            shown, "the first line is empty: no header", "add the Avazu header line"
        )
    return container, [c.strip().strip('"') for c in first_line.split(",")]


def _sniff_parts(
    files: List[Tuple[str, int]], shown: str, sniff: Callable[[str], Any], footers: bool = True
) -> Tuple[str, Optional[List[str]]]:
    """Sniff every part file of a folder, (path, size) each, which must all agree
    (:func:`ctr_lab.parts.check_parts`; ``footers``: Parquet schemas too, local files only).

    Empty part files (Spark writes some) hold no header and no rows: they are left out.
    """
    from ctr_lab.parts import check_parts

    parts = [(f, *sniff(f)) for f, size in files if size > 0]
    if not parts:
        raise DataLoadError(shown, "every file in the folder is empty", "re-create the data")
    check_parts(parts, footers=footers)
    return parts[0][1], parts[0][2]


def _sniff_remote(spark, path: str) -> Tuple[str, Optional[List[str]]]:
    """What a remote file or folder holds, as :func:`_sniff_local` tells a local one: from the
    first bytes of each of its files, read through Hadoop's file system (no Spark job); the part
    files of a folder must agree (their Parquet footers are not compared)."""
    if path.rstrip("/").endswith(".parquet"):
        return "parquet", None
    from ctr_lab.fs import HadoopFs

    try:
        fs = HadoopFs(spark, path)
        files = fs.data_files(path)
    except DataLoadError:
        raise  # HadoopFs's own one line (a file system this machine lacks)
    except Exception as exc:
        raise _remote_error(exc, path) from None
    if not files:
        raise DataLoadError(
            path, "the folder holds no data files", "point to a file or a folder of part files"
        )

    def sniff(part: str, shown: str) -> Tuple[str, Optional[List[str]]]:
        head = fs.head(part, _SNIFF_BYTES)
        return _sniff_head(head, part, shown, lambda: _inflate(head))

    if len(files) == 1:
        return sniff(files[0][0], path)
    return _sniff_parts(files, path, lambda part: sniff(part, part), footers=False)


#: A text file in another encoding (Latin-1, Windows-1252): said the same wherever the byte is.
_NOT_UTF8 = "not UTF-8 text"
_UTF8_FIX = "re-save it as UTF-8 (a spreadsheet's 'CSV UTF-8', or iconv -f WINDOWS-1252 -t UTF-8)"


def _missing_filesystem(problem: str) -> Optional[str]:
    """The problem, said plainly, when it is a file system missing from this machine; else None."""
    if NO_FILESYSTEM in problem:
        return problem
    if "S3AFileSystem not found" in problem:
        return "no S3A connector on this machine (class S3AFileSystem not found)"
    return None


def _inflate(head: bytes) -> bytes:
    """The text at the start of gzip data of which only ``head`` is at hand."""
    return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head, _SNIFF_BYTES)


def _remote_error(exc: Exception, path: str) -> DataLoadError:
    """The one-line error for a URI Spark cannot open: a missing S3 connector says so."""
    problem = spark_problem(exc)
    missing = _missing_filesystem(problem)
    if missing is not None:
        return DataLoadError(path, missing, NO_FILESYSTEM_FIX)
    return DataLoadError(path, problem, "check the URI and your access to it")


def _is_gzip_damage(problem: str) -> bool:
    signs = ("Unexpected end of input stream", "Not in GZIP format", "ZipException", "EOFException")
    return any(sign in problem for sign in signs)


# ----------------------------------------------------------------------------------------------
# Header → format
# ----------------------------------------------------------------------------------------------


def detect_format(columns: List[str]) -> Tuple[str, Dict[str, str], List[str], List[str]]:
    """Work out the file format from its header.

    Parameters
    ----------
    columns
        The header's column names, in order.

    Returns
    -------
    (format, renames, ignored, missing)
        ``format`` is ``"raw"``, ``"course"`` or ``"canonical"``; ``renames`` maps misspelt header
        names to the right ones; ``ignored`` lists unknown extra columns; ``missing`` lists the
        required columns the header lacks (empty when the file is usable).

    Examples
    --------
    >>> detect_format(list(S.RAW_COLUMNS))[0]
    'raw'
    >>> fmt, renames, ignored, missing = detect_format(["click", "C1"])
    >>> fmt, missing[:3]
    ('raw', ['id', 'hour', 'banner_pos'])
    """
    renames = {c: S.COURSE_HEADER_ALIASES[c] for c in columns if c in S.COURSE_HEADER_ALIASES}
    names = [renames.get(c, c) for c in columns]
    present = set(names)
    candidates = {
        "raw": S.RAW_COLUMNS,
        "course": S.COURSE_COLUMNS,
        "canonical": S.CANONICAL_COLUMNS,
    }
    if "id" in present or ("month" not in present and "label" not in present):
        order = ["raw", "course", "canonical"]
    elif "label" in present:
        order = ["canonical", "raw", "course"]
    else:
        order = ["course", "raw", "canonical"]
    best = min(order, key=lambda f: len(set(candidates[f]) - present))
    required = candidates[best]
    missing = [c for c in required if c not in present]
    known = set(required) | {S.TRUTH_COLUMN}
    ignored = [c for c in names if c not in known]
    return best, renames, ignored, missing


# ----------------------------------------------------------------------------------------------
# The load itself
# ----------------------------------------------------------------------------------------------


def load(
    path: str, spark=None, *, fmt: Optional[str] = None, cache_dir: Optional[str] = None
) -> Loaded:
    """Load an Avazu-style file into the canonical schema, with a report of every row.

    Parameters
    ----------
    path
        A file or a folder of part files: CSV, gzip CSV or Parquet; a local path or an
        ``s3://``/``s3a://`` URI; or the name of a committed sample (``"avazu_raw_50k"``,
        ``"course_10k"``), checked against its recorded sha256. Where the default file system
        is a cluster's HDFS (EMR), a path without a scheme is read from there, as
        ``spark.read`` reads it, not from the driver's folder.
    spark
        The Spark session; :func:`ctr_lab.session.get_spark` by default.
    fmt
        ``"raw"`` or ``"course"`` to insist on a format; detected from the header by default.
    cache_dir
        A folder (local, or ``s3://`` on EMR) to keep the validated rows in, as Parquet with the
        report. The first load validates the text and writes them there in the same single
        pass; a later load of the same, unchanged file (same name, sizes and modification
        times, same ctr_lab and Spark versions) reads them back instead: same ``df``,
        ``rejected_df`` and report, without parsing or validating the text again. The copy of
        each file lives in ``<cache_dir>/<file name>-<key>``; delete the folder to drop it.

    Returns
    -------
    Loaded
        ``df`` (accepted rows, canonical schema), ``rejected_df`` (rejected rows as text with a
        ``reason``), ``report`` (:class:`LoadReport`). The report costs one pass over the file;
        ``df`` is lazy: cache it (or give ``cache_dir``) before using it many times.

    Raises
    ------
    DataLoadError
        The file is missing, empty, not CSV/Parquet, not UTF-8, damaged, lacks a required column,
        or has click labels other than 0/1/TRUE/FALSE; or a folder's part files disagree.
    """
    from ctr_lab.fs import cluster_uri
    from ctr_lab.samples import SAMPLES, sample_path
    from ctr_lab.session import get_spark

    spark = spark or get_spark()
    shown = path
    if path in SAMPLES and not os.path.exists(path):
        # Reports name the sample, not this machine's checkout folder (notebook outputs are
        # compared across machines).
        path = sample_path(path)
        shown = f"{shown} (data_samples/{os.path.basename(path)})"
    elif (on_cluster := cluster_uri(spark, path)) is not None:
        # On a cluster, where Spark reads and writes it (HDFS), not the driver's folder.
        path = on_cluster
        shown = f"{shown} ({path})"
    files: Optional[List[str]] = None
    if _is_remote(path):
        spark_path = path
        container, header = _sniff_remote(spark, path)
    else:
        local = path[len("file://") :] if path.startswith("file://") else path
        if not os.path.exists(local):
            raise DataLoadError(
                shown, "no such file", "check the path (it is relative to " + os.getcwd() + ")"
            )
        files = _local_files(local)
        if not files:
            raise DataLoadError(
                shown, "the folder holds no data files", "point to a file or a folder of part files"
            )
        if len(files) == 1:
            container, header = _sniff_local(files[0], shown)
        else:
            sized = [(f, os.path.getsize(f)) for f in files]
            container, header = _sniff_parts(sized, shown, lambda f: _sniff_local(f, f))
        spark_path = "file://" + os.path.abspath(local)

    cache = None
    if cache_dir is not None:
        cache = _Cache.of(spark, cache_dir, spark_path, files, fmt)
        kept = cache.read(spark, shown)
        if kept is not None:
            return kept
    if container == "parquet":
        return _load_parquet(spark, spark_path, shown, fmt, cache)
    assert header is not None
    return _load_csv(spark, spark_path, shown, container, header, fmt, cache)


def _check_format(shown: str, columns: List[str], fmt: Optional[str]):
    found, renames, ignored, missing = detect_format(columns)
    if fmt is not None and fmt != found:
        raise DataLoadError(
            shown,
            f"the header looks like the {found} format, not {fmt}",
            f"leave the format to detection (fmt=None, or no --format) or give '{found}'",
        )
    if missing:
        shown_missing = ", ".join(missing[:5]) + (" …" if len(missing) > 5 else "")
        raise DataLoadError(
            shown,
            f"required column{'s' if len(missing) > 1 else ''} {shown_missing} "
            "missing from the header "
            f"(closest format: {found}, which has {len(_columns_of(found))} columns)",
            f"use a file with the {found} header: {','.join(_columns_of(found)[:4])},…",
        )
    dupes = sorted({c for c in columns if columns.count(c) > 1})
    if dupes:
        raise DataLoadError(
            shown, f"column {dupes[0]} appears twice in the header", "fix the header line"
        )
    return found, renames, ignored


def _columns_of(fmt: str) -> Tuple[str, ...]:
    return {"raw": S.RAW_COLUMNS, "course": S.COURSE_COLUMNS}.get(fmt, S.CANONICAL_COLUMNS)


def _load_csv(spark, spark_path, shown, container, header, fmt, cache=None) -> Loaded:
    found, renames, ignored = _check_format(shown, header, fmt)
    if found == "canonical":
        raise DataLoadError(
            shown, "canonical ctr_lab columns in a CSV file", "save canonical data as Parquet"
        )
    names = [renames.get(c, c) for c in header]
    # Positional string schema: the header was checked above, Spark skips it in every file.
    from pyspark.sql import types as T

    text_schema = T.StructType(
        [
            T.StructField(f"_c{i}" if n in ignored else n, T.StringType())
            for i, n in enumerate(names)
        ]
        + [T.StructField(_CORRUPT, T.StringType())]
    )
    raw = (
        spark.read.option("header", True)
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", _CORRUPT)
        .option("ignoreLeadingWhiteSpace", True)
        .option("ignoreTrailingWhiteSpace", True)
        .option("encoding", "UTF-8")
        .schema(text_schema)
        .csv(spark_path)
    )
    has_truth = S.TRUTH_COLUMN in names
    header_fixes = [f"{old} -> {new}" for old, new in renames.items()]
    return _validate(raw, shown, found, container, header_fixes, ignored, has_truth, cache)


def _load_parquet(spark, spark_path, shown, fmt, cache=None) -> Loaded:
    try:
        pq = spark.read.parquet(spark_path)
    except Exception as exc:
        problem = spark_problem(exc)
        missing = _missing_filesystem(problem)
        if missing is not None:
            raise DataLoadError(shown, missing, NO_FILESYSTEM_FIX) from None
        raise DataLoadError(
            shown, f"cannot read as Parquet ({problem})", "re-write the Parquet file"
        ) from None
    found, renames, ignored = _check_format(shown, pq.columns, fmt)
    for old, new in renames.items():
        pq = pq.withColumnRenamed(old, new)
    has_truth = S.TRUTH_COLUMN in pq.columns
    if found == "canonical":
        return _canonical_parquet(pq, shown, ignored, has_truth)
    keep = [c for c in _columns_of(found)] + ([S.TRUTH_COLUMN] if has_truth else [])
    text_df = pq.selectExpr(
        *[f"CAST({sql.name(c)} AS STRING) AS {sql.name(c)}" for c in keep],
        f"CAST(NULL AS STRING) AS {sql.name(_CORRUPT)}",
    )
    fixes = [f"{old} -> {new}" for old, new in renames.items()]
    return _validate(text_df, shown, found, "parquet", fixes, ignored, has_truth, cache)


def _canonical_parquet(pq, shown, ignored, has_truth) -> Loaded:
    expected = {f.name: f.dataType for f in S.canonical_schema().fields}
    for name, kind in expected.items():
        actual = pq.schema[name].dataType
        if actual != kind:
            raise DataLoadError(
                shown,
                f"column {name} is {actual.simpleString()}, "
                f"the canonical schema says {kind.simpleString()}",
                "re-create the file with ctr_lab.load(...).df.write.parquet(...)",
            )
    cols = list(S.CANONICAL_COLUMNS) + ([S.TRUTH_COLUMN] if has_truth else [])
    df = pq.selectExpr(*sql.names(cols))
    row = _collect_one(
        df.selectExpr(
            "count(1) AS n",
            "sum(label) AS clicks",
            # Epoch seconds: PySpark would turn a timestamp into this machine's wall time.
            "CAST(min(event_time) AS BIGINT) AS first",
            "CAST(max(event_time) AS BIGINT) AS last",
        ),
        shown,
    )
    n = row["n"]
    if n == 0:
        raise DataLoadError(shown, "the Parquet data has no rows", "re-create it")
    report = LoadReport(
        path=shown,
        format="canonical",
        container="parquet",
        rows_read=n,
        rows_accepted=n,
        rows_rejected=0,
        rejected_by_reason={},
        clicks=int(row["clicks"] or 0),
        click_rate=(row["clicks"] or 0) / n,
        first_event=_fmt_epoch(row["first"]),
        last_event=_fmt_epoch(row["last"]),
        ignored_columns=list(ignored),
        has_truth=has_truth,
    )
    empty = df.sparkSession.createDataFrame([], "reason string")
    return Loaded(df=df, rejected_df=empty, report=report)


def _second_look(rows, by_reason, found, shown, utf8: bool) -> Dict[str, List[str]]:
    """One pass over ``rows`` (rows as text, with ``reason``): up to two of the values rejected
    for each reason of ``by_reason`` that is about a value (the least and the greatest), and,
    with ``utf8``, the file refused when a text column holds U+FFFD, which is how Spark's CSV
    reader reads a byte that is not UTF-8."""
    keys = [k for k in by_reason if _rejected_value(k, found) is not None]
    aggs = []
    for k in keys:
        value = f"CASE WHEN reason = {sql.text(k)} THEN {_rejected_value(k, found)} END"
        aggs += [f"min({value}) AS {sql.name('least:' + k)}"]
        aggs += [f"max({value}) AS {sql.name('greatest:' + k)}"]
    if utf8:
        tests = [
            f"CASE WHEN instr({sql.name(n)}, {sql.text(chr(0xFFFD))}) > 0 "
            f"THEN concat({sql.text(n + ' ')}, {sql.name(n)}) END"
            for n in rows.columns
            if n != "reason"
        ]
        mangled = f"coalesce({', '.join(tests)})"
        aggs += [f"count({mangled}) AS not_utf8", f"min({mangled}) AS not_utf8_example"]
    if not aggs:
        return {}
    row = _collect_one(rows.selectExpr(*aggs), shown).asDict()
    if row.get("not_utf8"):
        column, _, value = row["not_utf8_example"].partition(" ")
        raise DataLoadError(
            shown,
            f"{_NOT_UTF8}: {row['not_utf8']:,} row(s) hold bytes that are not UTF-8, "
            f"read as U+FFFD, e.g. column {column} {value[:_EXAMPLE_CHARS]!r}",
            _UTF8_FIX,
        )
    return {k: _examples(row[f"least:{k}"], row[f"greatest:{k}"]) for k in keys}


def _examples(least: Optional[str], greatest: Optional[str]) -> List[str]:
    """The distinct example values, each cut to ``_EXAMPLE_CHARS`` characters."""
    values = [v for v in dict.fromkeys([least, greatest]) if v is not None][:_EXAMPLES]
    return [v if len(v) <= _EXAMPLE_CHARS else v[: _EXAMPLE_CHARS - 1] + "…" for v in values]


def _fmt_epoch(seconds) -> Optional[str]:
    if seconds is None:
        return None
    return datetime.fromtimestamp(int(seconds), tz=timezone.utc).strftime("%Y-%m-%d %H:%M")


def _collect_one(df, shown: str):
    try:
        return df.collect()[0]
    except Exception as exc:
        raise _read_error(exc, shown) from None


def _read_error(exc: Exception, shown: str) -> DataLoadError:
    """The one-line error for a Spark failure while reading ``shown``."""
    problem = spark_problem(exc)
    if _is_gzip_damage(problem):
        return DataLoadError(
            shown,
            "the gzip archive is damaged (it ends early)",
            "re-download or re-compress the file",
        )
    return DataLoadError(shown, f"Spark could not read the file ({problem})", "check the file")


#: The regular expressions of the load's checks, as SQL literals. Each matches up to the text's
#: very end (``\\z``): ``$`` would also match before a final newline.
_PADDED_ID = sql.text("^[0-9]{1,7}\\z")  # an id's digits to left-pad with zeros
_HOUR_SHAPE = sql.text("^ *[0-9]{8} *\\z")  # the raw format's YYMMDDHH
_DIGITS = sql.text("^[+-]?[0-9]+\\z")  # an integer, whether or not it fits an INT
_ID_SHAPE = sql.text("^ *[0-9]{1,20} *\\z")  # the raw format's id, an unsigned integer


def _try_int(name: str) -> str:
    """``name``'s text, trimmed, as an INT in SQL; null where it is not one."""
    return f"try_cast(trim({sql.name(name)}) AS INT)"


def _id_shape(text: str) -> str:
    """The shape of an id's trimmed ``text``: one of the four ``_HEX_*`` codes (SQL in, SQL out).

    The usual shape, eight lowercase hex digits, is checked without a regular expression:
    eight characters, all hex (``unhex`` is null otherwise), none upper case. Spark's ``rlike``
    decodes each value to a Java string and matches it; these read its UTF-8 bytes. The nine
    ids of 3M rows took 1.7 s instead of 2.7 s, warm (BENCHMARKS.md, "The ids' usual shape
    without a regular expression"). The digits to pad are matched up to the text's very end
    (``\\z``): ``$`` would also match before a final newline.
    """
    hex8 = f"length({text}) = 8 AND unhex({text}) IS NOT NULL"
    return (
        f"CASE WHEN {hex8} AND lower({text}) = {text} THEN {_HEX_FINE} "
        f"WHEN {hex8} THEN {_HEX_UPPER} "
        f"WHEN {text} RLIKE {_PADDED_ID} THEN {_HEX_PADDED} "
        f"ELSE {_HEX_BAD} END"
    )


def _int_column(name: str) -> str:
    """The typed column of :func:`_try_int` (SQL): the same values, without ``trim`` on purpose.

    Spark's cast from text to a number skips spaces and control characters around the digits
    itself (``UTF8String.toInt``), so the value is that of ``_try_int(name)``; but the
    expression differs from the one in the row check. Spark's optimizer copies every constraint
    of a filter once per projected alias whose expression the constraint holds
    (``UnaryNode.getAllValidConstraints`` in Spark's ``LogicalPlan.scala``): with the twelve
    casts of the check projected as they are, a join on the loaded rows planned 2^14 copies of
    the whole check, about 20 s per query on PySpark 3.5.
    """
    return f"try_cast({sql.name(name)} AS INT)"


@contextlib.contextmanager
def _compiled_by_the_jvm(spark) -> Iterator[None]:
    """Run the validation with ``spark.sql.codegen.hugeMethodLimit`` at HotSpot's limit.

    The validation's whole-stage generated code is longer than HotSpot compiles, so with Spark's
    default limit (65,535) it ran interpreted. At 8,000 (the value Spark's documentation
    advises on HotSpot) Spark runs that plan without whole-stage code generation, in shorter
    methods the JVM compiles: the load of 1M rows 16.6 -> 12.0 s (BENCHMARKS.md, "The load's
    validation"). Only for the load's own pass: set for every query, the limit made the unit
    tests' many small queries slower. The session's value is restored after.
    """
    key = "spark.sql.codegen.hugeMethodLimit"
    before = spark.conf.get(key)
    if int(before) > _HUGE_METHOD_LIMIT:
        spark.conf.set(key, str(_HUGE_METHOD_LIMIT))
    try:
        yield
    finally:
        spark.conf.set(key, before)


def _validate(
    text_df, shown, found, container, header_fixes, ignored, has_truth, cache=None
) -> Loaded:
    """Type, repair and account for every row of a text DataFrame in the raw or course format.

    Every expression is SQL text, parsed by the JVM in one call per column: built from PySpark
    column objects, the same expressions made a load's 3,800 to 6,700 calls through Py4J, a
    second or more of a small file's load (BENCHMARKS.md, "A load's expressions in SQL").
    """
    label_text = f"upper(trim({sql.name('click')}))"
    int_cols = list(S.INT_COLUMNS)
    if found == "course":
        int_cols += ["month", "dayofweek", "day", "hour"]
        event_time = (
            "try_to_timestamp(format_string('2014-%02d-%02d %02d', "
            "try_cast(trim(month) AS INT), try_cast(trim(day) AS INT), "
            "try_cast(trim(hour) AS INT)), "
            "'yyyy-MM-dd HH')"
        )
    else:
        # Parsed only when it has the shape: try_to_timestamp still raises on some text that
        # does not (e.g. '1410210', or '14102100' and a newline, on Spark 3.5). The shape allows
        # only what ``trim`` removes around the digits, spaces, up to the text's very end (``$``
        # would also match before a final newline; a CSV's reader trims tabs and newlines, but
        # Parquet can hold them).
        event_time = (
            f"CASE WHEN hour RLIKE {_HOUR_SHAPE} THEN try_to_timestamp(trim(hour), 'yyMMddHH') END"
        )
    required = list(_columns_of(found))

    # The first problem found, in this order, is the row's reason.
    checks = [
        (f"{sql.name(_CORRUPT)} IS NOT NULL", sql.text("malformed_row")),
        ("lower(trim(click)) = 'click'", sql.text("repeated_header")),
    ]
    for name in required:
        checks.append(
            (
                f"{sql.name(name)} IS NULL OR trim({sql.name(name)}) = ''",
                sql.text(f"missing:{name}"),
            )
        )
    checks.append((f"NOT {sql.is_in(label_text, (*_LABEL_TRUE, *_LABEL_FALSE))}", "'bad_label'"))
    for name in int_cols:
        # Digits that do not fit the column's INT are out of range, not "not an integer".
        digits = f"trim({sql.name(name)}) RLIKE {_DIGITS}"
        why = (
            f"CASE WHEN {digits} THEN {sql.text(f'out_of_range:{name}')} "
            f"ELSE {sql.text(f'not_integer:{name}')} END"
        )
        checks.append((f"{_try_int(name)} IS NULL", why))
    checks.append((f"({event_time}) IS NULL", "'bad_time'"))
    if found == "raw":
        # The same rule as the time's shape: the stored id is trimmed of spaces only.
        checks.append((f"NOT id RLIKE {_ID_SHAPE}", "'bad_id'"))
    if has_truth:
        truth = f"try_cast(trim({sql.name(S.TRUTH_COLUMN)}) AS DOUBLE)"
        checks.append(
            (
                f"{truth} IS NULL OR {truth} < 0 OR {truth} > 1",
                sql.text(f"not_number:{S.TRUTH_COLUMN}"),
            )
        )
    reason = "CASE " + " ".join(f"WHEN {cond} THEN {key}" for cond, key in checks) + " END"

    # Each id's shape, found once per value.
    hex_text = {h: f"trim({sql.name(h)})" for h in S.HEX_COLUMNS}
    mark = {h: sql.name(_MARK + h) for h in S.HEX_COLUMNS}
    label = f"CASE WHEN {sql.is_in(label_text, _LABEL_TRUE)} THEN 1 ELSE 0 END"
    # The checks, the report's counts and the output read these columns: each value is
    # parsed, classified and labelled once per row.
    marked = text_df.selectExpr(
        "*",
        f"{reason} AS reason",
        f"{event_time} AS {sql.name(_MARK + 'time')}",
        f"{label} AS {sql.name(_MARK + 'label')}",
        *[f"{_id_shape(hex_text[h])} AS {mark[h]}" for h in S.HEX_COLUMNS],
    )
    accepted = "reason IS NULL"

    reason_keys = ["malformed_row", "repeated_header", "bad_label", "bad_time", "bad_id"]
    reason_keys += [f"missing:{n}" for n in required]
    reason_keys += [f"{k}:{n}" for n in int_cols for k in ("not_integer", "out_of_range")]
    if has_truth:
        reason_keys.append(f"not_number:{S.TRUTH_COLUMN}")
    time = sql.name(_MARK + "time")
    aggs = ["count(1) AS rows_read"]
    aggs += [
        f"sum(CASE WHEN reason = {sql.text(k)} THEN 1 ELSE 0 END) AS {sql.name(k)}"
        for k in reason_keys
    ]
    aggs += [
        f"sum(CASE WHEN {accepted} THEN {sql.name(_MARK + 'label')} ELSE 0 END) AS clicks",
        "min(CASE WHEN reason = 'bad_label' THEN click END) AS bad_label_example",
        # Epoch seconds: observed metrics come back as plain numbers, not datetimes.
        f"min(CAST(CASE WHEN {accepted} THEN {time} END AS BIGINT)) AS first",
        f"max(CAST(CASE WHEN {accepted} THEN {time} END AS BIGINT)) AS last",
    ]
    for h in S.HEX_COLUMNS:
        repaired = f"{mark[h]} IN ({_HEX_PADDED}, {_HEX_UPPER})"
        aggs.append(
            f"sum(CASE WHEN {accepted} AND {repaired} THEN 1 ELSE 0 END) AS {sql.name('rep:' + h)}"
        )
        bad = f"{mark[h]} = {_HEX_BAD}"
        aggs.append(
            f"sum(CASE WHEN {accepted} AND {bad} THEN 1 ELSE 0 END) AS {sql.name('unrep:' + h)}"
        )

    out_cols = []
    for name in S.CANONICAL_COLUMNS:
        if name == "id":
            out_cols.append("trim(id) AS id" if found == "raw" else "CAST(NULL AS STRING) AS id")
        elif name == "label":
            out_cols.append(f"CAST({sql.name(_MARK + 'label')} AS INT) AS label")
        elif name == "event_time":
            out_cols.append(f"{time} AS event_time")
        elif name in S.HEX_COLUMNS:
            t = hex_text[name]
            out_cols.append(
                f"CASE WHEN {mark[name]} = {_HEX_PADDED} THEN lpad({t}, 8, '0') "
                f"WHEN {mark[name]} = {_HEX_UPPER} THEN lower({t}) "
                f"ELSE {t} END AS {sql.name(name)}"
            )
        else:
            out_cols.append(f"{_int_column(name)} AS {sql.name(name)}")
    if has_truth:
        truth_col = sql.name(S.TRUTH_COLUMN)
        out_cols.append(f"try_cast(trim({truth_col}) AS DOUBLE) AS {truth_col}")
    keep_text = [n for n in text_df.columns if n != _CORRUPT]
    if cache is None:
        with _compiled_by_the_jvm(marked.sparkSession):
            row = _collect_one(marked.selectExpr(*aggs), shown).asDict()
    else:
        row = cache.write(marked, aggs, out_cols, keep_text, accepted, shown)
    try:
        rows_read = row["rows_read"]
        if rows_read == 0:
            raise DataLoadError(
                shown, "the file has a header but no data rows", "use a file with data"
            )
        by_reason = {k: int(row[k]) for k in reason_keys if row[k]}
        unrepairable = any(row[f"unrep:{h}"] for h in S.HEX_COLUMNS)
        # A byte that is not UTF-8 (U+FFFD to Spark's CSV reader) passes no column's check:
        # only rows rejected or with an id kept as read can hold one. They, and the rejected
        # values' examples, are looked at in one pass over those rows alone, so clean data
        # pays nothing for either.
        utf8 = container != "parquet" and bool(by_reason or unrepairable)
        examples = {}
        if by_reason or utf8:
            if cache is not None:
                rows = cache.text_rows(marked.sparkSession, keep_text, with_ids=utf8)
            else:
                suspect = ["reason IS NOT NULL"]
                suspect += [f"{mark[h]} = {_HEX_BAD}" for h in S.HEX_COLUMNS] if utf8 else []
                rows = marked.where(" OR ".join(suspect)).selectExpr(
                    *sql.names([*keep_text, _CORRUPT, "reason"])
                )
            examples = _second_look(rows, by_reason, found, shown, utf8)
        if row["bad_label"]:
            raise DataLoadError(
                shown,
                f"column click has {row['bad_label']:,} value(s) that are not 0/1/TRUE/FALSE, "
                f"e.g. {row['bad_label_example']!r}",
                "map the labels to 0/1 (or TRUE/FALSE) before loading",
            )
        rejected = sum(by_reason.values())
        accepted_n = rows_read - rejected
    except DataLoadError:
        if cache is not None:
            cache.abandon()
        raise

    report = LoadReport(
        path=shown,
        format=found,
        container=container,
        rows_read=rows_read,
        rows_accepted=accepted_n,
        rows_rejected=rejected,
        rejected_by_reason=by_reason,
        clicks=int(row["clicks"]),
        click_rate=(row["clicks"] / accepted_n) if accepted_n else None,
        first_event=_fmt_epoch(row["first"]),
        last_event=_fmt_epoch(row["last"]),
        ids_repaired={h: int(row[f"rep:{h}"]) for h in S.HEX_COLUMNS if row[f"rep:{h}"]},
        ids_unrepairable={h: int(row[f"unrep:{h}"]) for h in S.HEX_COLUMNS if row[f"unrep:{h}"]},
        header_fixes=header_fixes,
        ignored_columns=list(ignored),
        has_truth=has_truth,
        rejected_examples=examples,
    )
    if cache is not None:
        return cache.commit(marked.sparkSession, report, keep_text)
    df = marked.where(accepted).selectExpr(*out_cols)
    rejected_df = marked.where(f"NOT ({accepted})").selectExpr(
        *sql.names([*keep_text, _CORRUPT, "reason"])
    )
    return Loaded(df=df, rejected_df=rejected_df, report=report)


#: Written last into a validated copy: the report and what is needed to read the copy back.
KEPT_MARKER = "_CTR_LAB_DATA.json"
_TEXT = "_text_"  # prefix of the text columns kept for rejected rows


class _Cache:
    """The validated copy of one source file (or folder) under a ``cache_dir``.

    ``<cache_dir>/<name>-<key>/rows`` holds every row read, as Parquet: the canonical columns,
    ``reason`` (null when accepted) and, for rejected rows only, the text as read. The key
    hashes the source's URI, its files' names, sizes and modification times, the format asked
    for, and the ctr_lab and Spark versions: a changed file gets a new copy.
    """

    def __init__(self, fs: Any, folder: str) -> None:
        self.fs = fs
        self.folder = folder
        self.tmp = f"{folder}.tmp-{uuid.uuid4().hex[:12]}"

    @classmethod
    def of(cls, spark, cache_dir: str, spark_path: str, files, fmt) -> _Cache:
        import ctr_lab
        from ctr_lab.fs import HadoopFs

        if files is not None:
            stats = [
                (os.path.basename(f), st.st_size, st.st_mtime_ns // 1_000_000)
                for f, st in ((f, os.stat(f)) for f in files)
            ]
        else:
            try:
                stats = HadoopFs(spark, spark_path).file_stats(spark_path)
            except Exception as exc:
                raise _remote_error(exc, spark_path) from None
        doc = {
            "source": spark_path,
            "files": stats,
            "fmt": fmt,
            "ctr_lab": ctr_lab.__version__,
            "spark": spark.version,
        }
        key = hashlib.sha256(json.dumps(doc, sort_keys=True).encode("utf-8")).hexdigest()[:16]
        name = os.path.basename(spark_path.rstrip("/")).split(".")[0] or "data"
        return cls(HadoopFs(spark, cache_dir), f"{cache_dir.rstrip('/')}/{name}-{key}")

    def read(self, spark, shown: str) -> Optional[Loaded]:
        """The kept copy, or None when there is none (or only a partial one)."""
        text = self.fs.read_text(f"{self.folder}/{KEPT_MARKER}")
        if text is None:
            return None
        meta = json.loads(text)
        report = LoadReport(**meta["report"])
        report.path = shown
        return self._loaded(spark, report, meta["text_columns"])

    def write(self, marked, aggs, out_cols, keep_text, accepted, shown) -> Dict[str, Any]:
        """Write every row in one pass and return the report's aggregates, observed on the way."""
        from pyspark.sql import Observation
        from pyspark.sql import functions as F

        observed = Observation("ctr_lab_load")
        text = [
            f"CASE WHEN NOT ({accepted}) THEN {sql.name(n)} END AS {sql.name(_TEXT + n)}"
            for n in [*keep_text, _CORRUPT]
        ]
        metrics = [F.expr(a) for a in aggs]
        rows = marked.observe(observed, *metrics).selectExpr(*out_cols, "reason", *text)
        try:
            with _compiled_by_the_jvm(rows.sparkSession):
                rows.write.parquet(f"{self.tmp}/rows")
        except Exception as exc:
            self.abandon()
            raise _read_error(exc, str(shown)) from None
        return dict(observed.get)

    def abandon(self) -> None:
        self.fs.delete(self.tmp)

    def commit(self, spark, report: LoadReport, keep_text: List[str]) -> Loaded:
        """Write the marker last and move the copy into place; return the load from it.

        A complete copy already in place was written meanwhile by another session (two
        notebooks, or two students on one cluster, loading the same file at once): the same
        file read the same way, so it is kept, and this one dropped. Replacing it would delete
        the files that the other session's ``df`` reads.
        """
        if self._complete():
            self.abandon()
            return self._loaded(spark, report, keep_text)
        meta = {"report": report.to_dict(), "text_columns": keep_text}
        self.fs.write_text(f"{self.tmp}/{KEPT_MARKER}", json.dumps(meta))
        self.fs.delete(self.folder)  # a copy without its marker: a write that died
        if not self.fs.rename(self.tmp, self.folder):
            self.abandon()
            if self._complete():  # another session's, moved into place since the check
                return self._loaded(spark, report, keep_text)
            raise DataLoadError(
                self.folder, "could not move the validated copy into place", "check the folder"
            )
        return self._loaded(spark, report, keep_text)

    def _complete(self) -> bool:
        return self.fs.read_text(f"{self.folder}/{KEPT_MARKER}") is not None

    def text_rows(
        self, spark, keep_text: List[str], folder: Optional[str] = None, with_ids: bool = False
    ):
        """The copy's (written, or in place) rejected rows as text, with ``reason``; with
        ``with_ids`` every row, an accepted one with its ids as stored (as read when kept)."""
        rows = spark.read.parquet(f"{folder or self.tmp}/rows")
        ids = set(S.HEX_COLUMNS) if with_ids else set()
        text = [
            f"coalesce({sql.name(_TEXT + n)}, {sql.name(n)}) AS {sql.name(n)}"
            if n in ids
            else f"{sql.name(_TEXT + n)} AS {sql.name(n)}"
            for n in [*keep_text, _CORRUPT]
        ]
        if not with_ids:
            rows = rows.where("reason IS NOT NULL")
        return rows.selectExpr(*text, "reason")

    def _loaded(self, spark, report: LoadReport, keep_text: List[str]) -> Loaded:
        rows = spark.read.parquet(f"{self.folder}/rows")
        cols = list(S.CANONICAL_COLUMNS) + ([S.TRUTH_COLUMN] if report.has_truth else [])
        df = rows.where("reason IS NULL").selectExpr(*sql.names(cols))
        rejected_df = self.text_rows(spark, keep_text, self.folder)
        return Loaded(df=df, rejected_df=rejected_df, report=report, kept_in=self.folder)


def read_truth(path: str, spark=None):
    """Read a generator truth file (``id,p_click`` or ``row,p_click``) as a DataFrame.

    Examples
    --------
    >>> truth_df = read_truth("data_samples/avazu_raw_50k_truth.csv.gz", spark)
    >>> truth_df.dtypes
    [('id', 'string'), ('p_click', 'double')]

    Join it to the rows of ``cl.load("avazu_raw_50k")`` on ``id`` to score a model against
    the truth.
    """
    from ctr_lab.session import get_spark

    spark = spark or get_spark()
    local = path[len("file://") :] if path.startswith("file://") else path
    if not _is_remote(path) and not os.path.exists(local):
        raise DataLoadError(path, "no such file", "generate it with ctr-lab make-data --truth-out")
    spark_path = path if _is_remote(path) else "file://" + os.path.abspath(local)
    text_df = spark.read.option("header", True).csv(spark_path)
    key = text_df.columns[0]
    if key not in ("id", "row") or text_df.columns[1:] != [S.TRUTH_COLUMN]:
        raise DataLoadError(
            path,
            f"header {','.join(text_df.columns)} is not id,p_click or row,p_click",
            "point to a truth file written by ctr-lab make-data --truth-out",
        )
    key_type = "string" if key == "id" else "long"
    return text_df.selectExpr(
        f"CAST({key} AS {key_type}) AS {key}",
        f"CAST({S.TRUTH_COLUMN} AS DOUBLE) AS {S.TRUTH_COLUMN}",
    )


def click_rate_by(df, col_name: str):
    """Impressions, clicks and click rate per value of ``col_name``, most impressions first.

    Examples
    --------
    >>> df = spark.createDataFrame(
    ...     [(0, 1), (0, 0), (0, 0), (0, 0), (1, 1), (1, 0)], "banner_pos int, label int"
    ... )
    >>> click_rate_by(df, "banner_pos").show()
    +----------+-----------+------+----------+
    |banner_pos|impressions|clicks|click_rate|
    +----------+-----------+------+----------+
    |         0|          4|     1|      0.25|
    |         1|          2|     1|       0.5|
    +----------+-----------+------+----------+
    <BLANKLINE>
    """
    from pyspark.sql import functions as F

    return (
        df.groupBy(col_name)
        .agg(F.count(F.lit(1)).alias("impressions"), F.sum("label").alias("clicks"))
        .withColumn("click_rate", F.round(F.col("clicks") / F.col("impressions"), 4))
        .orderBy(F.col("impressions").desc(), F.col(col_name))
    )
