"""Train once: a model saved with the fingerprint of its data, pipeline and settings, reloaded
when they match, written atomically so an interrupted save never leaves a model that loads wrong.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from typing import Any, Dict, List, Optional, Tuple, Union

from pyspark.ml import Pipeline, PipelineModel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from ctr_lab.errors import CtrLabError
from ctr_lab.fs import HadoopFs as _Fs
from ctr_lab.fs import default_fs, refuse_cluster_scratch
from ctr_lab.persistence import read_pipeline_model, write_pipeline_model
from ctr_lab.train.pipelines import build_pipeline, check_extra_features, fit_featurized

#: Name of the file that marks a saved model folder complete; it holds the fingerprint.
COMPLETE_MARKER = "_CTR_LAB_COMPLETE.json"

# What fit_or_load and tune did (trained, reloaded, copied): the local kernel shows these lines
# under a cell; elsewhere they are ordinary INFO records.
_log = logging.getLogger(__name__)


_UTC_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


#: What a fingerprint hashes of the data: hours and clicks are left out, so the models saved before
#: they were recorded keep their fingerprints (and are reloaded, not refitted).
_HASHED_DATA_KEYS = ("rows", "checksum", "columns")


def data_fingerprint(df: DataFrame) -> Dict[str, Any]:
    """Row count and an order-free checksum (sum of xxhash64 of every row) of ``df``; the first
    and last event hour when ``df`` has an ``event_time`` column, the clicks when it has ``label``.

    One pass over the data (the hours come from the same aggregation); the same rows give the same
    checksum on any partitioning. The hours are UTC (``YYYY-MM-DDTHH:MM:SSZ``), from the epoch
    seconds, so they do not depend on the session time zone. They are recorded beside a saved
    model (:func:`training_record`) so that a grader can tell which days a model has seen.

    Examples
    --------
    >>> data_fingerprint(spark.range(3))["rows"]
    3
    >>> df = spark.createDataFrame([(1413849600,), (1414018800,)], "t long")
    >>> fp = data_fingerprint(df.selectExpr("CAST(t AS TIMESTAMP) AS event_time"))
    >>> fp["first_hour"], fp["last_hour"]
    ('2014-10-21T00:00:00Z', '2014-10-22T23:00:00Z')
    """
    row_hash = F.xxhash64(*[F.col(c) for c in df.columns]).cast("decimal(38,0)")
    aggs = [F.count(F.lit(1)).alias("rows"), F.sum(row_hash).alias("checksum")]
    if "event_time" in df.columns:  # the canonical columns (ctr_lab.schema.CANONICAL_COLUMNS)
        seconds = F.unix_timestamp(F.col("event_time"))
        aggs += [F.min(seconds).alias("first"), F.max(seconds).alias("last")]
    if "label" in df.columns:
        aggs.append(F.sum(F.col("label").cast("long")).alias("clicks"))
    row = df.agg(*aggs).first()
    got: Dict[str, Any] = row.asDict() if row is not None else {"rows": 0, "checksum": None}
    found: Dict[str, Any] = {
        "rows": int(got["rows"]),
        "checksum": str(got["checksum"]),
        "columns": list(df.columns),
    }
    if got.get("first") is not None:
        found.update(first_hour=utc_text(got["first"]), last_hour=utc_text(got["last"]))
    if got.get("clicks") is not None:
        found["clicks"] = int(got["clicks"])
    return found


def utc_text(epoch_seconds: int) -> str:
    """Epoch seconds as UTC text, the form a model's record keeps its hours in.

    Examples
    --------
    >>> utc_text(1414627200)
    '2014-10-30T00:00:00Z'
    """
    return time.strftime(_UTC_FORMAT, time.gmtime(int(epoch_seconds)))


def utc_seconds(text: str) -> int:
    """The inverse of :func:`utc_text`.

    Examples
    --------
    >>> utc_seconds("2014-10-30T00:00:00Z")
    1414627200
    """
    import calendar

    return calendar.timegm(time.strptime(text, _UTC_FORMAT))


def training_record(data: Dict[str, Any]) -> Dict[str, Any]:
    """What the completion marker of a saved model says about its training rows.

    ``data`` is their :func:`data_fingerprint`; the record keeps the row count, the clicks, the
    checksum and the first and last event hours (absent for data without ``label`` or
    ``event_time``), under the marker's ``training_data`` key.

    Examples
    --------
    >>> training_record({"rows": 2, "checksum": "7", "columns": ["x"]})
    {'rows': 2, 'checksum': '7'}
    """
    keys = ("rows", "clicks", "checksum", "first_hour", "last_hour")
    return {k: data[k] for k in keys if k in data}


def _stage_spec(stage: Any) -> Dict[str, Any]:
    # Default output names embed the random uid: leave it out so equal pipelines match.
    params = {
        p.name: repr(v).replace(stage.uid, "<uid>") for p, v in stage.extractParamMap().items()
    }
    return {"class": f"{type(stage).__module__}.{type(stage).__name__}", "params": params}


def _pipeline_spec(pipeline: Pipeline) -> List[Dict[str, Any]]:
    specs = []
    for stage in pipeline.getStages():
        spec = _stage_spec(stage)
        if isinstance(stage, Pipeline):
            spec["stages"] = _pipeline_spec(stage)
        specs.append(spec)
    return specs


def _fingerprint(
    spark,
    pipeline: Pipeline,
    df: DataFrame,
    settings: Dict[str, Any],
    data: Optional[Dict[str, Any]] = None,
    search: Optional[Dict[str, Any]] = None,
) -> str:
    """The fingerprint of fitting ``pipeline`` on ``df`` (of a ``search`` for its best LR).

    ``data``: ``df``'s :func:`data_fingerprint` when it is known already.
    """
    import ctr_lab

    data = data if data is not None else data_fingerprint(df)
    doc = {
        "data": {k: data[k] for k in _HASHED_DATA_KEYS},
        "pipeline": _pipeline_spec(pipeline),
        "settings": {k: repr(v) for k, v in sorted(settings.items())},
        "ctr_lab": getattr(ctr_lab, "__version__", "unknown"),
        "spark": spark.version,
    }
    if search is not None:
        doc["search"] = {k: repr(v) for k, v in sorted(search.items())}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode("utf-8")).hexdigest()


def _marker(model_dir: str) -> str:
    return model_dir.rstrip("/") + "/" + COMPLETE_MARKER


#: A save's folders beside the model are ``<dir>.tmp-ID`` and ``<dir>.old-ID``, ID this many hex
#: digits; the clean-up matches exactly these (a user's ``mydata.old-backup`` is not touched).
_SAVE_ID_LENGTH = 12
_SAVE_ID = "[0-9a-f]" * _SAVE_ID_LENGTH
#: A ``.tmp-*`` folder without a marker older than this is a save that died: it is deleted.
STALE_SAVE_SECONDS = 3600.0
#: How many models a folder keeps beside it when a save replaces them (``<dir>.v-ID``, ID from
#: the replaced model's fingerprint): other settings, other data, another student's run into the
#: same folder. Asked for again, a kept model is moved back, not refitted; beyond this many, the
#: ones saved longest ago are deleted.
KEPT_MODELS = 4


def _saved_marker(fs: _Fs, model_dir: str) -> Dict[str, Any]:
    """The completion marker of the model in ``model_dir``; empty when there is none, or when
    the folder does not hold the very files the marker lists.

    A rename is a copy on S3, file by file, and a copy stopped partway (the session killed) can
    leave the marker without the rest: Hadoop's S3A documentation says directory renames "can
    fail partway through" (``hadoop-aws`` ``index.md``), and S3 lists the marker's name before
    ``metadata/`` and ``stages/``. So the marker lists every file of the model it completes
    (:func:`_save_model`); a marker from before that list is taken at its word, as before.
    """
    marker = _marker_as_written(fs, model_dir)
    return {} if _not_as_listed(fs, model_dir, marker) else marker


def _marker_as_written(fs: _Fs, model_dir: str) -> Dict[str, Any]:
    """The JSON object in the marker file of ``model_dir``; empty when there is none."""
    saved = fs.read_text(_marker(model_dir))
    if saved is None:
        return {}
    try:
        marker = json.loads(saved)
    except ValueError:
        return {}
    return marker if isinstance(marker, dict) else {}


def _not_as_listed(fs: _Fs, model_dir: str, marker: Dict[str, Any]) -> List[str]:
    """The files ``marker`` lists that ``model_dir`` lacks or holds at another size, sorted;
    none for a marker without the list. A file the marker does not list (a file browser's
    ``.DS_Store``) does not count: Spark's readers pass over it."""
    files = marker.get("files")
    if not isinstance(files, dict):
        return []
    held = fs.tree(model_dir)
    return sorted(name for name, size in files.items() if held.get(name) != size)


def files_not_as_listed(model_dir: str, spark) -> List[str]:
    """The files the completion marker of ``model_dir`` lists that the folder lacks or holds at
    another size: a model copied partway, or changed after its save.

    Empty when the folder has no marker, or one without the list (saved before it was kept).
    """
    fs, base = _Fs(spark, model_dir), model_dir.rstrip("/")
    return _not_as_listed(fs, base, _marker_as_written(fs, base))


def saved_record(model_dir: str, spark) -> Dict[str, Any]:
    """The completion marker of the model saved in ``model_dir`` (local, HDFS or ``s3://``).

    Empty when the folder holds no readable marker: not a model :func:`fit_or_load` or
    :func:`tune` saved, or a save that never finished. The marker has ``fingerprint``,
    ``saved_at``, and, for a model saved by this version, ``ctr_lab`` (the version),
    ``training_data`` (:func:`training_record`: rows, checksum, first and last hour) and
    ``files`` (each file of the model with its size; a folder missing one of them has none).

    Examples
    --------
    >>> saved_record(str(tmp_path / "no_model_here"), spark)
    {}
    """
    return _saved_marker(_Fs(spark, model_dir), model_dir.rstrip("/"))


#: What a save puts at the top of a model folder: Spark ML's folders (a pipeline's ``metadata`` and
#: ``stages``, a single stage's ``data``) and the completion marker, with Hadoop's ``.<name>.crc``.
_MODEL_ENTRIES = frozenset(["metadata/", "stages/", "data/", "_SUCCESS", COMPLETE_MARKER])

#: What a file browser leaves in a folder: a folder holding only these counts as empty.
_IGNORED_ENTRIES = frozenset([".DS_Store"])


def _is_model_entry(name: str) -> bool:
    if name.startswith(".") and name.endswith(".crc"):
        name = name[1:-4]
    return name in _MODEL_ENTRIES


def _holds_spark_metadata(fs: _Fs, base: str) -> bool:
    """Whether ``base/metadata`` holds the line Spark ML writes for a model (class and uid)."""
    parts = sorted(path for path, _age in fs.glob(f"{base}/metadata/part-*"))
    text = fs.read_text(parts[0]) if parts else None
    try:
        doc = json.loads(text.splitlines()[0]) if text else None
    except ValueError:
        return False
    return isinstance(doc, dict) and "class" in doc and "uid" in doc


def _refuse_other_content(fs: _Fs, model_dir: str) -> None:
    """Refuse ``model_dir`` when it holds something a save would delete that is no model.

    Allowed: nothing there, an empty folder, a folder with the completion marker (a model
    ctr_lab saved), and a Spark ML model folder without the marker (a save that did not finish,
    or a model saved by Spark itself): these a save replaces. Refused: an ordinary file, and a
    folder holding anything else, so that a save never deletes a user's files.
    """
    base = model_dir.rstrip("/") or model_dir
    if not fs.exists(base):
        return
    fix = "Fix: choose a new or empty folder for the model"
    if not fs.is_dir(base):
        raise CtrLabError(f"{model_dir}: exists and is a file, not a ctr_lab model folder. {fix}")
    names = [name for name in fs.names(base) if name not in _IGNORED_ENTRIES]
    if not names:
        return
    if all(map(_is_model_entry, names)) and (
        fs.exists(_marker(base)) or _holds_spark_metadata(fs, base)
    ):
        return
    names.sort(key=lambda name: (_is_model_entry(name), name))  # the user's entries first
    shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
    raise CtrLabError(f"{model_dir}: exists and is not a ctr_lab model (it holds {shown}). {fix}")


def refuse_other_content(model_dir: str, spark) -> None:
    """Refuse ``model_dir`` (local or ``s3://``) when saving a model there would delete files.

    :func:`fit_or_load` and :func:`ctr_lab.train.tune` call it before any work; the command line
    calls it before it loads the data. A new path, an empty folder and a model folder are
    accepted; an ordinary file and a folder holding anything else are refused with a
    :class:`~ctr_lab.errors.CtrLabError` that names what is there.

    Examples
    --------
    >>> refuse_other_content(str(tmp_path / "new_folder"), spark)
    >>> (tmp_path / "mydata").mkdir()
    >>> _ = (tmp_path / "mydata" / "notes.txt").write_text("mine")
    >>> refuse_other_content(str(tmp_path / "mydata"), spark)
    Traceback (most recent call last):
    ...
    ctr_lab.errors.CtrLabError: .../mydata: exists and is not a ctr_lab model (it holds notes...
    """
    _refuse_other_content(_Fs(spark, model_dir), model_dir)


def _holds(fs: _Fs, model_dir: str, key: str, value: str) -> bool:
    """Whether ``model_dir`` holds a whole model whose marker has ``key`` = ``value``.

    The folder is listed (:func:`_not_as_listed`) only when the marker matches: a search
    through the folders beside a model reads their markers, not their files.
    """
    marker = _marker_as_written(fs, model_dir)
    return marker.get(key) == value and not _not_as_listed(fs, model_dir, marker)


def _restore_left_over(fs: _Fs, model_dir: str, fingerprint: str) -> bool:
    """Move a complete model with ``fingerprint`` that a killed save left aside back into place.

    A save killed after its marker was written leaves the new model in ``<dir>.tmp-*``; in
    versions before kept models (:data:`KEPT_MODELS`), one killed between the two renames left
    the previous model in ``<dir>.old-*`` (now it is kept as ``<dir>.v-*``).
    """
    for pattern in (".old-" + _SAVE_ID, ".tmp-" + _SAVE_ID):
        for path, _age in fs.glob(model_dir + pattern):
            if not _holds(fs, path, "fingerprint", fingerprint):
                continue
            if fs.exists(model_dir):
                fs.rename(model_dir, f"{model_dir}.old-{uuid.uuid4().hex[:12]}")
            return fs.rename(path, model_dir)
    return False


def _sweep_left_overs(fs: _Fs, model_dir: str) -> None:
    """Delete what killed saves left beside ``model_dir``: ``.old-*`` folders, and ``.tmp-*``
    folders with no marker and untouched for :data:`STALE_SAVE_SECONDS` (a younger one may be
    another process's save in progress)."""
    for path, _age in fs.glob(model_dir + ".old-" + _SAVE_ID):
        fs.delete(path)
    for path, age in fs.glob(model_dir + ".tmp-" + _SAVE_ID):
        if age > STALE_SAVE_SECONDS and not fs.exists(_marker(path)):
            fs.delete(path)


def _name(path: str) -> str:
    """The last part of a path or URI (``fs.glob`` gives URIs: ``file:/...``, ``s3://...``)."""
    return path.rstrip("/").rsplit("/", 1)[-1]


def _rename(fs: _Fs, src: str, dst: str) -> None:
    if not fs.rename(src, dst):
        raise CtrLabError(f"fit_or_load: could not rename {src} to {dst}")


def _kept_versions(fs: _Fs, model_dir: str) -> List[Tuple[str, float]]:
    """The models kept beside ``model_dir`` (``<dir>.v-ID``), each with its age in seconds."""
    return fs.glob(model_dir + ".v-" + _SAVE_ID)


def _restore_kept(fs: _Fs, model_dir: str, key: str, value: str) -> Optional[str]:
    """Move back the kept model whose marker has ``key`` = ``value``; the folder it came from.

    The model in ``model_dir`` is kept in its turn (:func:`_move_aside`): asking for one, then
    the other, moves models and never fits them again.
    """
    for path, _age in _kept_versions(fs, model_dir):
        if not _holds(fs, path, key, value):
            continue
        _move_aside(fs, model_dir, spare=path)
        _rename(fs, path, model_dir)
        return path
    return None


def _move_aside(fs: _Fs, model_dir: str, spare: str = "") -> None:
    """Clear ``model_dir`` for a save: a complete model is kept beside it (``<dir>.v-ID``, at
    most :data:`KEPT_MODELS`, the ones saved longest ago deleted first, never ``spare``: the
    one about to move back); anything else there (a save that never finished, a Spark model
    without the marker) is deleted."""
    if not fs.exists(model_dir):
        return
    marker = _saved_marker(fs, model_dir)
    fingerprint = marker.get("fingerprint")
    if not isinstance(fingerprint, str) or not fingerprint:
        old_dir = f"{model_dir}.old-{uuid.uuid4().hex[:_SAVE_ID_LENGTH]}"
        fs.rename(model_dir, old_dir)
        fs.delete(old_dir)
        return
    # Named by what a later call asks for: the model, and for tune's winner also its search.
    asked = (fingerprint + str(marker.get("search_fingerprint", ""))).encode("utf-8")
    kept = f"{model_dir}.v-{hashlib.sha256(asked).hexdigest()[:_SAVE_ID_LENGTH]}"
    fs.delete(kept)  # an older copy of the same model
    _rename(fs, model_dir, kept)
    staying = {_name(kept), _name(spare)}
    others = [path for path, _age in _kept_versions(fs, model_dir) if _name(path) not in staying]
    others.sort(key=lambda path: _marker_as_written(fs, path).get("saved_at", ""), reverse=True)
    for path in others[max(KEPT_MODELS - 1, 0) :]:
        fs.delete(path)


def fit_or_load(
    pipeline_or_name: Union[str, Pipeline],
    train_df: DataFrame,
    model_dir: str,
    *,
    known_data: Optional[Dict[str, Any]] = None,
    **settings: Any,
) -> Tuple[PipelineModel, Dict[str, Any]]:
    """Fit a pipeline once: reload the saved model when nothing changed, else fit and save it.

    The fingerprint covers the data (row count + sum of row hashes: one pass), the pipeline's
    stages and params, ``settings``, the ctr_lab version and the Spark version. A saved model is
    loaded only when its folder holds the completion marker (:data:`COMPLETE_MARKER`) with the
    same fingerprint. Saving is atomic: the model is written to a temporary sibling folder, the
    marker is written last, and the folder is renamed into place (atomic on local disks and
    HDFS; on S3 a rename is a copy, file by file, and the marker lists the model's files, so a
    half-copied folder is never loaded). A folder without a marker, or without every file its
    marker lists (a crash mid-save or mid-copy), is deleted and refitted. A
    complete model that a killed save left beside the folder (``<model_dir>.old-*`` or
    ``.tmp-*``, with the marker) is moved back and loaded when its fingerprint matches; what
    killed saves left otherwise is deleted (``.tmp-*`` once :data:`STALE_SAVE_SECONDS` old).

    A model is trained once per data and settings, whatever folder asks for it: when another
    folder beside ``model_dir`` (same parent) holds a complete model with the same fingerprint,
    for example the baseline of notebook 03 or the winner :func:`tune` saved, it is copied
    into ``model_dir`` (the same atomic save) and loaded instead of fitted.

    Nor is a model lost when another replaces it: a save into a folder that holds a complete
    model with another fingerprint (other settings, other data, another student's run into the
    same folder) keeps that model beside it as ``<model_dir>.v-ID`` (at most
    :data:`KEPT_MODELS` of them; the ones saved longest ago are deleted first). Asked for again,
    it is moved back into ``model_dir``, and the model there is kept in its turn.

    Parameters
    ----------
    pipeline_or_name
        A :data:`PIPELINES` name (built with ``settings``) or a ``Pipeline``.
    train_df
        The training rows.
    model_dir
        Where the model lives: a local path or an ``s3://`` URI. A path without a scheme is
        refused where the default file system is HDFS (an EMR cluster): it would be lost with
        the cluster (:func:`ctr_lab.fs.refuse_cluster_scratch`). So is an ordinary file, or a
        folder holding anything but a model (:func:`refuse_other_content`), before any work:
        a save would delete what is there.
    known_data
        ``train_df``'s :func:`data_fingerprint` when the caller has it already (it saves a
        pass over the data).
    settings
        The pipeline's settings (:func:`build_pipeline`), part of the fingerprint.

    Returns
    -------
    (PipelineModel, info)
        ``info`` has ``loaded`` (bool), ``fingerprint``, ``seconds`` and ``model_dir``;
        ``copied_from`` when the model came from another folder beside it, ``restored_from``
        when it was a model this folder kept (``<model_dir>.v-ID``).

    Examples
    --------
    >>> from pyspark.ml import Pipeline
    >>> from pyspark.ml.classification import LogisticRegression
    >>> from pyspark.ml.feature import VectorAssembler
    >>> df = spark.createDataFrame(
    ...     [(float(x), y) for x, y in enumerate([0, 0, 1, 0, 1, 1])], ["x", "label"]
    ... )
    >>> pipeline = Pipeline(
    ...     stages=[VectorAssembler(inputCols=["x"], outputCol="features"), LogisticRegression()]
    ... )
    >>> model, info = fit_or_load(pipeline, df, str(tmp_path / "model"))
    >>> info["loaded"]
    False
    >>> model, info = fit_or_load(pipeline, df, str(tmp_path / "model"))
    >>> info["loaded"]
    True
    """
    t0 = time.perf_counter()
    spark = train_df.sparkSession
    refuse_cluster_scratch(model_dir, default_fs(spark))
    fs = _Fs(spark, model_dir)
    _refuse_other_content(fs, model_dir)  # before the fit: it would be lost with the files
    if isinstance(pipeline_or_name, str):
        pipeline = build_pipeline(pipeline_or_name, **settings)
        check_extra_features(settings.get("extra_features"), train_df)  # before any pass
    else:
        pipeline = pipeline_or_name
    data = known_data if known_data is not None else data_fingerprint(train_df)
    fingerprint = _fingerprint(spark, pipeline, train_df, settings, data)
    trained_on = {"training_data": training_record(data)}
    info: Dict[str, Any] = {"fingerprint": fingerprint, "model_dir": model_dir}

    base = model_dir.rstrip("/")
    kept: Optional[str] = None
    found = _holds(fs, base, "fingerprint", fingerprint)
    found = found or _restore_left_over(fs, base, fingerprint)
    if not found:
        kept = _restore_kept(fs, base, "fingerprint", fingerprint)
    if found or kept is not None:
        model = read_pipeline_model(model_dir)
        _sweep_left_overs(fs, base)
        info.update(loaded=True, seconds=time.perf_counter() - t0)
        if kept is not None:
            info["restored_from"] = kept
            _log.info(
                "fit_or_load: moved back the model these settings saved before, kept in %s "
                "when another replaced it (%.1f s)",
                kept,
                info["seconds"],
            )
        else:
            _log.info(
                "fit_or_load: reloaded the saved model from %s in %.1f s",
                model_dir,
                info["seconds"],
            )
        return model, info
    twin = _same_model_beside(fs, base, fingerprint)
    if twin is not None:
        _save_model(fs, base, fingerprint, copy_of=twin, extra=trained_on)
        model = read_pipeline_model(model_dir)
        info.update(loaded=True, copied_from=twin, seconds=time.perf_counter() - t0)
        _log.info("fit_or_load: copied the same model from %s to %s", twin, model_dir)
        return model, info

    model = fit_featurized(pipeline, train_df)
    _save_model(fs, base, fingerprint, model=model, extra=trained_on)
    info.update(loaded=False, seconds=time.perf_counter() - t0)
    _log.info("fit_or_load: trained in %.1f s, saved to %s", info["seconds"], model_dir)
    return model, info


def _same_model_beside(fs: _Fs, base: str, fingerprint: str) -> Optional[str]:
    """A complete model with ``fingerprint`` in another folder beside ``base``, if any."""
    parent = base.rsplit("/", 1)[0] if "/" in base else "."
    for marker, _age in fs.glob(f"{parent}/*/{COMPLETE_MARKER}"):
        folder = marker[: -len(COMPLETE_MARKER) - 1]
        name = _name(folder)
        # This folder's own kept models were looked at already (_restore_kept).
        if ".tmp-" in name or ".old-" in name or name.split(".v-")[0] == _name(base):
            continue
        if _holds(fs, folder, "fingerprint", fingerprint):
            return folder
    return None


def _save_model(
    fs: _Fs,
    base: str,
    fingerprint: str,
    model: Optional[PipelineModel] = None,
    copy_of: Optional[str] = None,
    extra: Optional[Dict[str, Any]] = None,
) -> None:
    """Save ``model`` (or copy the saved model at ``copy_of``) to ``base`` atomically.

    Written to a temporary sibling, the marker (with ``extra`` in it) last, then renamed into
    place; the previous folder is moved aside first (:func:`_move_aside`: a complete model is
    kept beside it, anything else deleted). A ``base`` that holds
    anything but a model (:func:`refuse_other_content`) is refused before anything is written.
    """
    _refuse_other_content(fs, base)
    tmp_dir = f"{base}.tmp-{uuid.uuid4().hex[:_SAVE_ID_LENGTH]}"
    try:
        if model is not None:
            write_pipeline_model(model, tmp_dir)
        else:
            assert copy_of is not None
            fs.copy_tree(copy_of, tmp_dir, skip=COMPLETE_MARKER)
        import ctr_lab

        marker = {
            "fingerprint": fingerprint,
            "saved_at": utc_text(int(time.time())),
            "ctr_lab": getattr(ctr_lab, "__version__", "unknown"),
        }
        if copy_of is not None:
            marker["copied_from"] = copy_of
        marker.update(extra or {})
        marker["files"] = fs.tree(tmp_dir)  # what a copy of the folder must hold (_saved_marker)
        fs.write_text(_marker(tmp_dir), json.dumps(marker))
        _move_aside(fs, base)
        _rename(fs, tmp_dir, base)
    except Exception:
        fs.delete(tmp_dir)
        raise
    _sweep_left_overs(fs, base)
