"""Saving and loading pipeline models in Spark ML's own format, without a Spark job per file.

Spark ML saves each stage with a ``metadata`` folder: one line of JSON (class, uid, params) in a
``part-*`` file. PySpark 3.5 writes that line with ``sc.parallelize([json], 1).saveAsTextFile``
and reads it back with ``sc.textFile(path, 1).first()`` (``DefaultParamsWriter.saveMetadata``,
``DefaultParamsReader.loadMetadata`` in ``pyspark/ml/util.py``): a Spark job whose task runs in
a Python worker, for each of these files. Loading a pipeline with Python stages reads every
stage's metadata twice (``PipelineSharedReadWrite.load`` looks up the class, then the stage
reads its own), so loading a ``recommended`` model ran 13 such jobs: about 2 s in a warm local
driver (``benchmarks/model_io.py``), and on a cluster a task on an executor each.

Here the same line is read and written through the JVM's Hadoop ``FileSystem`` (the same
``file:``, ``hdfs:`` or ``s3:`` paths, the same files): no job, a few milliseconds. The folder
layout is Spark's, so ``PipelineModel.load`` reads what :func:`write_pipeline_model` writes, and
:func:`read_pipeline_model` reads what ``PipelineModel.write().save`` writes, on PySpark 3.5
and 4.x. The stages Spark implements in the JVM still load through the JVM, as before.

Examples
--------
>>> from pyspark.ml import Pipeline, PipelineModel
>>> from ctr_lab.train.stages import RowFeatures
>>> import ctr_lab as cl
>>> df = cl.load("course_10k", spark).df
>>> model = Pipeline(stages=[RowFeatures()]).fit(df)
>>> write_pipeline_model(model, str(tmp_path / "m"))
>>> [type(s).__name__ for s in read_pipeline_model(str(tmp_path / "m")).stages]
['RowFeatures']
>>> [type(s).__name__ for s in PipelineModel.load(str(tmp_path / "m")).stages]
['RowFeatures']
"""

from __future__ import annotations

import importlib
import json
import os
import re
from typing import Any, Dict, List, Optional, cast

from pyspark.ml.param import Params
from pyspark.ml.util import (
    DefaultParamsReadable,
    DefaultParamsReader,
    DefaultParamsWritable,
    DefaultParamsWriter,
    JavaMLReadable,
    JavaMLWritable,
)

from ctr_lab.errors import CtrLabError
from ctr_lab.fs import HadoopFs

__all__ = [
    "ParamsReadable",
    "ParamsWritable",
    "read_metadata",
    "read_params",
    "read_pipeline_model",
    "write_metadata",
    "write_pipeline_model",
]


def _active_spark() -> Any:
    from pyspark.sql import SparkSession

    return SparkSession.getActiveSession() or SparkSession.builder.getOrCreate()


#: Where Hadoop's ``LineReader`` ends a line (``sc.textFile``), and no other character does:
#: the JVM reads the first line of a metadata file this way.
_HADOOP_LINE_END = re.compile(r"\r\n|\r|\n")


def read_metadata(spark: Any, path: str) -> Dict[str, Any]:
    """The metadata Spark ML saved for the stage or pipeline in ``path``, as a dict.

    Reads the first line of ``path/metadata/part-*``: the file ``saveAsTextFile`` (PySpark 3.5)
    or ``DataFrame.write.text`` (PySpark 4) left, or :func:`write_metadata`.
    """
    pattern = f"{path.rstrip('/')}/metadata/part-*"
    fs = HadoopFs(spark, pattern)
    parts = sorted(found for found, _age in fs.glob(pattern))
    return _first_line(path, fs.read_text(parts[0]) if parts else None)


def _first_line(path: str, text: Optional[str]) -> Dict[str, Any]:
    """The metadata of the stage in ``path`` from the text of its metadata file."""
    if not text:
        raise FileNotFoundError(f"{path}: no Spark ML metadata in it (metadata/part-*)")
    return json.loads(_HADOOP_LINE_END.split(text, maxsplit=1)[0])


def write_metadata(
    spark: Any, path: str, instance: Any, param_map: Optional[Dict[str, Any]] = None
) -> None:
    """Write ``instance``'s metadata to ``path/metadata`` as Spark ML does, without a job.

    The JSON is PySpark's own (``DefaultParamsWriter._get_metadata_to_save``); the files are
    those of a one-partition ``saveAsTextFile``: ``part-00000`` and an empty ``_SUCCESS``.
    """
    text = DefaultParamsWriter._get_metadata_to_save(instance, spark, paramMap=param_map)
    folder = f"{path.rstrip('/')}/metadata"
    fs = HadoopFs(spark, folder)
    fs.write_text(f"{folder}/part-00000", text + "\n")
    fs.write_text(f"{folder}/_SUCCESS", "")


#: The packages a saved stage's class may come from. A model folder is data (a student hands one
#: in to ``ctr-lab grade``): the class its metadata names is imported only from these.
_STAGE_PACKAGES = ("pyspark.ml", "ctr_lab")
_FIX = "Fix: save the model again with fit_or_load, tune or ctr-lab train"
#: PySpark's reader of a stage Spark implements in the JVM (``JavaMLReader``): the JVM reads it.
_JVM_READ = JavaMLReadable.read.__func__  # type: ignore[attr-defined]


def _python_class(name: str, path: str) -> Any:
    """The Python class of the stage saved in ``path``: PySpark's for Spark's own
    (``loadParamsInstance``), ctr_lab's; any other name is refused before it is imported."""
    if name.startswith("org.apache.spark."):
        name = "pyspark" + name[len("org.apache.spark") :]
    module, _, attr = name.rpartition(".")
    if not any(module == p or module.startswith(p + ".") for p in _STAGE_PACKAGES):
        raise CtrLabError(
            f"{path}: the stage class {name!r} is neither Spark ML's nor ctr_lab's, and is not "
            f"imported. {_FIX}"
        )
    try:
        cls = getattr(importlib.import_module(module), attr, None)
    except ImportError:
        cls = None
    if not isinstance(cls, type):
        raise CtrLabError(f"{path}: the stage class {name!r} does not exist here. {_FIX}")
    return cls


class _ParamsWriter(DefaultParamsWriter):
    def saveImpl(self, path: str) -> None:
        write_metadata(self.sparkSession, path, self.instance)


def read_params(spark: Any, path: str, metadata: Optional[Dict[str, Any]] = None) -> Any:
    """The stage saved in ``path`` with its uid and params, as ``DefaultParamsReader.load``.

    ``metadata`` is that stage's metadata when the caller has read it already.
    """
    if metadata is None:
        metadata = read_metadata(spark, path)
    instance = _python_class(metadata["class"], path)()
    instance._resetUid(metadata["uid"])
    DefaultParamsReader.getAndSetParams(instance, metadata)
    return instance


class _ParamsReader(DefaultParamsReader):
    def load(self, path: str) -> Any:
        return read_params(self.sparkSession, path)


class ParamsWritable(DefaultParamsWritable):
    """``DefaultParamsWritable`` whose metadata is written by :func:`write_metadata`."""

    def write(self) -> DefaultParamsWriter:
        return _ParamsWriter(cast(Params, self))


class ParamsReadable(DefaultParamsReadable):
    """``DefaultParamsReadable`` whose metadata is read by :func:`read_metadata`."""

    @classmethod
    def read(cls) -> DefaultParamsReader:
        return _ParamsReader(cls)


def _stage_path(uid: str, index: int, count: int, path: str) -> str:
    # PipelineSharedReadWrite.getStagePath: the index zero-padded to the count's digits.
    return os.path.join(path, "stages", f"{str(index).zfill(len(str(count)))}_{uid}")


def write_pipeline_model(model: Any, path: str) -> None:
    """Save a fitted ``PipelineModel`` to ``path`` (which must not exist yet), as Spark does.

    A pipeline of stages Spark implements in the JVM only is saved by the JVM, as
    ``model.write().save(path)`` would; one with Python stages as PySpark's
    ``PipelineModelWriter`` lays it out, its metadata written by :func:`write_metadata`.
    """
    stages = model.stages
    if all(isinstance(stage, JavaMLWritable) for stage in stages):
        model.write().save(path)
        return
    uids = [stage.uid for stage in stages]
    write_metadata(
        _active_spark(), path, model, param_map={"stageUids": uids, "language": "Python"}
    )
    for index, stage in enumerate(stages):
        stage.write().save(_stage_path(stage.uid, index, len(stages), path))


def read_pipeline_model(path: str) -> Any:
    """The ``PipelineModel`` saved in ``path`` (by Spark or :func:`write_pipeline_model`).

    A model folder is data (a student hands one in to ``ctr-lab grade``), so every stage's class,
    in a pipeline inside the pipeline too, is checked before anything imports or loads it: Spark
    ML's or ctr_lab's, read by ctr_lab's readers, by the JVM, or by this function for a pipeline
    inside. PySpark's own reader of a pipeline imports whatever class its stages' folders name
    (``DefaultParamsReader.loadParamsInstance``), so it reads none of them.
    """
    from pyspark.ml import PipelineModel

    spark = _active_spark()
    metadata = read_metadata(spark, path)
    params = metadata.get("paramMap", {})
    if params.get("language") != "Python":
        _check_jvm_classes(spark, path, _metadata_below(spark, path))
        return PipelineModel.load(path)  # saved by the JVM: the JVM reads it
    uids = params["stageUids"]
    stages = []
    held: Optional[Dict[str, List[str]]] = None  # listed once, for the first stage the JVM reads
    for index, uid in enumerate(uids):
        stage_path = _stage_path(uid, index, len(uids), path)
        stage_metadata = read_metadata(spark, stage_path)
        cls = _python_class(stage_metadata["class"], stage_path)
        if issubclass(cls, ParamsReadable):  # ctr_lab's reader: the metadata is all it reads
            stages.append(read_params(spark, stage_path, stage_metadata))
        elif cls is PipelineModel:
            stages.append(read_pipeline_model(stage_path))
        elif cls.__module__.split(".")[0] == "ctr_lab":
            stages.append(cls.load(stage_path))  # ctr_lab's readers read params as above
        elif _read_by_the_jvm(cls):  # the JVM checks the stage's own class: what it holds here
            held = held if held is not None else _metadata_below(spark, path)
            within = f"stages/{os.path.basename(stage_path)}/"
            _check_jvm_classes(spark, path, held, within)
            stages.append(cls.load(stage_path))
        else:
            raise CtrLabError(
                f"{stage_path}: the stage class {stage_metadata['class']!r} is not one a model "
                f"of ctr_lab holds, and is not read. {_FIX}"
            )
    return PipelineModel(stages=stages)._resetUid(metadata["uid"])


def _read_by_the_jvm(cls: type) -> bool:
    """Whether PySpark reads ``cls`` through the JVM's reader of the class's own JVM twin."""
    read = getattr(cls, "read", None)
    return issubclass(cls, JavaMLReadable) and getattr(read, "__func__", None) is _JVM_READ


def _metadata_below(spark: Any, path: str) -> Dict[str, List[str]]:
    """Each folder below model folder ``path`` with a metadata of its own (by its path below
    ``path``), and the files of that metadata that Hadoop's readers read: not those named
    ``_*`` or ``.*``. A file named ``metadata`` counts as one: ``sc.textFile`` reads it alike."""
    held: Dict[str, List[str]] = {}
    for name in HadoopFs(spark, path).tree(path):
        folder, _, file = name.rpartition("/")
        owner, _, last = folder.rpartition("/")
        if file == "metadata":
            owner, last = folder, file
        if last == "metadata" and owner and not file.startswith(("_", ".")):
            held.setdefault(owner, []).append(file)
    return held


def _check_jvm_classes(spark: Any, path: str, held: Dict[str, List[str]], within: str = "") -> None:
    """Refuse a model in which an instance the JVM reads names a class outside Spark ML.

    The JVM reads a pipeline's stages, and the instances a stage holds (a pipeline's stages,
    ``OneVsRestModel``'s models, ``RFormulaModel``'s pipeline, a tuning model's best model),
    with ``DefaultParamsReader.loadParamsInstance`` (Spark's ``ReadWrite.scala``): it loads the
    class the first line of the instance's ``metadata`` names (``sc.textFile(...).first()``: of
    whichever of its files the listing gives first) and calls its ``read``. So each folder of
    ``held`` (:func:`_metadata_below`) below ``within`` must have one ``part-*`` file there, as
    Spark writes it, naming a class of Spark ML.
    """
    fs = HadoopFs(spark, path)
    for folder, files in sorted(held.items()):
        if not folder.startswith(within):
            continue
        where = f"{path.rstrip('/')}/{folder}"
        if len(files) != 1 or not files[0].startswith("part-"):
            raise CtrLabError(
                f"{where}: its metadata holds {', '.join(sorted(files))} where Spark ML writes one "
                f"part-* file, and is not loaded. {_FIX}"
            )
        # The file the listing found, read without listing its folder again.
        name = str(
            _first_line(where, fs.read_text(f"{where}/metadata/{files[0]}")).get("class", "")
        )
        if not name.startswith("org.apache.spark.ml."):
            raise CtrLabError(
                f"{where}: the stage class {name!r} is not Spark ML's, and is not loaded. {_FIX}"
            )
