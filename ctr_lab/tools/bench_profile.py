"""Read a Spark event log and add up its jobs, stages and task metrics per job group.

Spark writes one JSON object per line (``spark.eventLog.enabled``), uncompressed or, with
``spark.eventLog.compress``, through ``spark.eventLog.compression.codec`` (zstd by default).
``ctr-lab bench --profile`` sets a job group (``spark.jobGroup.id``) as each stage of a
pipeline begins; Spark copies it into the ``Properties`` of every job and stage that stage
submits, so each task's metrics can be added to the stage of the pipeline that caused it.

Metrics are Spark's own task metrics (``SparkListenerTaskEnd``): ``input_records`` and
``input_bytes`` count what tasks read from files *and from cached blocks* (a cached
DataFrame's records are column batches, not rows), ``output_*`` what they wrote to files,
``shuffle_read_bytes`` local plus remote shuffle bytes fetched, ``spill_memory_bytes`` and
``spill_disk_bytes`` Spark's two spill measures, ``gc_seconds`` the JVM's GC time while tasks
ran, ``task_seconds`` their executor run time.

Examples
--------
>>> in_load = {GROUP_PROPERTY: "load"}  # the Properties of a job or stage of group "load"
>>> events = [
...     {"Event": "SparkListenerJobStart", "Job ID": 0, "Stage IDs": [0], "Properties": in_load},
...     {"Event": "SparkListenerStageSubmitted", "Stage Info": {"Stage ID": 0},
...      "Properties": in_load},
...     {"Event": "SparkListenerTaskEnd", "Stage ID": 0, "Task Metrics": {
...      "JVM GC Time": 250, "Input Metrics": {"Records Read": 10, "Bytes Read": 99}}},
... ]
>>> totals = aggregate(events)["load"]
>>> totals["jobs"], totals["tasks"], totals["input_records"], totals["gc_seconds"]
(1, 1, 10, 0.25)
"""

from __future__ import annotations

import io
import json
import os
from typing import IO, Any, Dict, Iterable, Iterator, List

from ctr_lab.errors import CtrLabError

__all__ = [
    "GROUP_PROPERTY",
    "METRICS",
    "NO_GROUP",
    "aggregate",
    "event_log_files",
    "markdown_table",
    "profile",
    "read_events",
]

#: Every total :func:`aggregate` keeps per job group, in table order.
METRICS = (
    "jobs",
    "stages",
    "tasks",
    "task_seconds",
    "gc_seconds",
    "input_records",
    "input_bytes",
    "output_records",
    "output_bytes",
    "shuffle_read_bytes",
    "shuffle_write_bytes",
    "spill_memory_bytes",
    "spill_disk_bytes",
)
#: The group of jobs submitted outside any job group.
NO_GROUP = "(no job group)"
#: The property that holds a job's group (``SparkContext.setJobGroup`` sets it).
GROUP_PROPERTY = "spark.jobGroup.id"
#: Codec file suffixes Spark gives compressed event logs (``EventLogFileWriter``).
_CODECS = ("lz4", "lzf", "snappy", "zstd")


def event_log_files(path: str) -> List[str]:
    """The files of the one event log at ``path``: a file, or a folder holding one log.

    A folder may hold one application's log file (``spark.eventLog.dir`` of one application)
    or one rolling log (``eventlog_v2_<app>/events_<n>_<app>``, read in order of ``n``).

    Examples
    --------
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> open(os.path.join(folder, "local-1"), "w").close()
    >>> [os.path.basename(f) for f in event_log_files(folder)]
    ['local-1']
    """
    if os.path.isfile(path):
        return [path]
    if not os.path.isdir(path):
        raise CtrLabError(f"{path}: no such event log. Fix: give the file or folder Spark wrote")
    names = sorted(n for n in os.listdir(path) if not n.startswith(".") and not n.endswith(".crc"))
    if len(names) != 1:
        raise CtrLabError(
            f"{path}: holds {len(names)} event logs ({', '.join(names[:5]) or 'none'}). "
            "Fix: give one log file, or a folder of one application"
        )
    one = os.path.join(path, names[0])
    if os.path.isdir(one):  # rolling event log
        parts = [n for n in os.listdir(one) if n.startswith("events_")]
        parts.sort(key=lambda n: int(n.split("_")[1]))
        return [os.path.join(one, n) for n in parts]
    return [one]


def _open(path: str) -> IO[str]:
    base = path[: -len(".inprogress")] if path.endswith(".inprogress") else path
    codec = base.rsplit(".", 1)[-1] if "." in os.path.basename(base) else ""
    if codec not in _CODECS:
        return open(path, encoding="utf-8")
    if codec == "zstd":
        try:
            import zstandard
        except ImportError:
            zstandard = None
        if zstandard is not None:
            raw = zstandard.ZstdDecompressor().stream_reader(open(path, "rb"), closefd=True)  # noqa: SIM115 (the caller closes it)
            return io.TextIOWrapper(raw, encoding="utf-8")
    raise CtrLabError(
        f"{path}: event log compressed with {codec}, which this reader cannot decompress. "
        "Fix: run with spark.eventLog.compress=false (ctr-lab bench --profile does), or "
        "pip install zstandard for zstd logs"
    )


def read_events(path: str) -> Iterator[Dict[str, Any]]:
    """The events of the event log at ``path`` (see :func:`event_log_files`), in order.

    Examples
    --------
    >>> import tempfile
    >>> log = os.path.join(tempfile.mkdtemp(), "local-1")
    >>> with open(log, "w") as fh:
    ...     _ = fh.write('{"Event": "SparkListenerApplicationStart"}\\n')
    >>> [e["Event"] for e in read_events(log)]
    ['SparkListenerApplicationStart']
    """
    for name in event_log_files(path):
        with _open(name) as fh:
            for number, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:
                    if name.endswith(".inprogress"):  # a log still being written ends mid-line
                        return
                    raise CtrLabError(
                        f"{name}, line {number}: not a JSON event. Fix: give a Spark event log"
                    ) from None


def _group(properties: Any) -> str:
    return str((properties or {}).get(GROUP_PROPERTY) or NO_GROUP)


def aggregate(events: Iterable[Dict[str, Any]]) -> Dict[str, Dict[str, float]]:
    """Totals of :data:`METRICS` per job group, groups in the order their first job started.

    ``jobs`` counts jobs started, ``stages`` stage attempts submitted (a stage a job could skip,
    its shuffle output already there, is not run and not counted), ``tasks`` tasks ended.
    """
    totals: Dict[str, Dict[str, float]] = {}
    stage_group: Dict[int, str] = {}

    def of(group: str) -> Dict[str, float]:
        if group not in totals:
            totals[group] = {name: 0 for name in METRICS}
        return totals[group]

    for event in events:
        kind = event.get("Event")
        if kind == "SparkListenerJobStart":
            group = _group(event.get("Properties"))
            of(group)["jobs"] += 1
            for stage_id in event.get("Stage IDs") or []:
                stage_group.setdefault(int(stage_id), group)
        elif kind == "SparkListenerStageSubmitted":
            stage_id = int(event["Stage Info"]["Stage ID"])
            if event.get("Properties"):  # the job group of the job that runs it
                stage_group[stage_id] = _group(event["Properties"])
            of(stage_group.get(stage_id, NO_GROUP))["stages"] += 1
        elif kind == "SparkListenerTaskEnd":
            _add_task(of(stage_group.get(int(event["Stage ID"]), NO_GROUP)), event)
    return totals


def _add_task(into: Dict[str, float], event: Dict[str, Any]) -> None:
    into["tasks"] += 1
    metrics = event.get("Task Metrics") or {}  # absent for some failed tasks
    read = metrics.get("Input Metrics") or {}
    written = metrics.get("Output Metrics") or {}
    shuffle_read = metrics.get("Shuffle Read Metrics") or {}
    shuffle_write = metrics.get("Shuffle Write Metrics") or {}
    into["task_seconds"] += metrics.get("Executor Run Time", 0) / 1000.0
    into["gc_seconds"] += metrics.get("JVM GC Time", 0) / 1000.0
    into["input_records"] += read.get("Records Read", 0)
    into["input_bytes"] += read.get("Bytes Read", 0)
    into["output_records"] += written.get("Records Written", 0)
    into["output_bytes"] += written.get("Bytes Written", 0)
    into["shuffle_read_bytes"] += shuffle_read.get("Remote Bytes Read", 0) + shuffle_read.get(
        "Local Bytes Read", 0
    )
    into["shuffle_write_bytes"] += shuffle_write.get("Shuffle Bytes Written", 0)
    into["spill_memory_bytes"] += metrics.get("Memory Bytes Spilled", 0)
    into["spill_disk_bytes"] += metrics.get("Disk Bytes Spilled", 0)


def profile(path: str) -> Dict[str, Dict[str, float]]:
    """:func:`aggregate` of the event log at ``path`` (a file or a folder of one log)."""
    return aggregate(read_events(path))


#: Table columns: (heading, metric or ``wall_seconds``, scale, digits).
_COLUMNS = (
    ("wall s", "wall_seconds", 1, 1),
    ("jobs", "jobs", 1, 0),
    ("stages", "stages", 1, 0),
    ("tasks", "tasks", 1, 0),
    ("task s", "task_seconds", 1, 1),
    ("GC s", "gc_seconds", 1, 1),
    ("records in", "input_records", 1, 0),
    ("MiB in", "input_bytes", 2**20, 1),
    ("records out", "output_records", 1, 0),
    ("MiB out", "output_bytes", 2**20, 1),
    ("shuffle read MiB", "shuffle_read_bytes", 2**20, 1),
    ("shuffle write MiB", "shuffle_write_bytes", 2**20, 1),
    ("spill MiB (memory/disk)", "", 2**20, 1),
)


def markdown_table(rows: List[Dict[str, Any]]) -> List[str]:
    """A markdown table of profile rows: ``stage``, ``wall_seconds`` and :data:`METRICS`.

    Examples
    --------
    >>> row = {"stage": "load", "wall_seconds": 2.0, **{m: 0 for m in METRICS}}
    >>> markdown_table([{**row, "input_records": 2000}])[2]
    '| load | 2.0 | 0 | 0 | 0 | 0.0 | 0.0 | 2,000 | 0.0 | 0 | 0.0 | 0.0 | 0.0 | 0.0/0.0 |'
    """

    def cell(row: Dict[str, Any], key: str, scale: float, digits: int) -> str:
        if not key:
            memory, disk = row.get("spill_memory_bytes"), row.get("spill_disk_bytes")
            if memory is None or disk is None:
                return "–"
            return f"{memory / scale:.{digits}f}/{disk / scale:.{digits}f}"
        value = row.get(key)
        return "–" if value is None else f"{value / scale:,.{digits}f}"

    lines = [
        "| stage | " + " | ".join(c[0] for c in _COLUMNS) + " |",
        "|---|" + "---:|" * len(_COLUMNS),
    ]
    for row in rows:
        cells = [cell(row, key, scale, digits) for _, key, scale, digits in _COLUMNS]
        lines.append(f"| {row['stage']} | " + " | ".join(cells) + " |")
    return lines
