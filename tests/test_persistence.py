"""ctr_lab.persistence: Spark ML's model format, written and read without a Spark job per file.

The reference is PySpark's own writer and reader: the ``pyspark_io`` fixture gives ctr_lab's
stages back PySpark's ``DefaultParamsWritable.write`` and ``DefaultParamsReadable.read``, so
``model.write().save`` and ``PipelineModel.load`` then run PySpark's code alone.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Optional

import pytest
from pyspark.ml import PipelineModel
from pyspark.ml.util import DefaultParamsReadable, DefaultParamsWritable

from ctr_lab.persistence import (
    ParamsReadable,
    ParamsWritable,
    read_pipeline_model,
    write_pipeline_model,
)
from ctr_lab.train.stages import ClassWeighter, ProbabilityRecalibrator, RowFeatures

pytestmark = pytest.mark.spark


def _python_stages_model() -> PipelineModel:
    """A fitted pipeline of ctr_lab's own (Python) stages, with params set and left default."""
    return PipelineModel(
        stages=[
            RowFeatures(),
            ClassWeighter(positiveWeight=3.0),
            ProbabilityRecalibrator(positiveWeight=3.0, threshold=0.25),
        ]
    )


@pytest.fixture
def pyspark_io(monkeypatch):
    """Within the test, ctr_lab's stages save and load with PySpark's writer and reader."""

    def use_pyspark() -> None:
        monkeypatch.setattr(ParamsWritable, "write", DefaultParamsWritable.write)
        monkeypatch.setattr(
            ParamsReadable, "read", classmethod(DefaultParamsReadable.read.__func__)
        )

    return use_pyspark


def _metadata(folder: Path) -> Dict[str, dict]:
    """Each metadata file under ``folder`` by its folder, the save's timestamp left out."""
    found = {}
    for part in sorted(folder.rglob("metadata/part-*")):
        meta = json.loads(part.read_text().splitlines()[0])
        meta.pop("timestamp")
        found[str(part.parent.parent.relative_to(folder))] = meta
    return found


def _jobs(spark, group: str) -> int:
    return len(spark.sparkContext.statusTracker().getJobIdsForGroup(group))


def _same(a: PipelineModel, b: PipelineModel) -> None:
    assert b.uid == a.uid
    assert [type(s) for s in b.stages] == [type(s) for s in a.stages]
    for before, after in zip(a.stages, b.stages):
        assert after.uid == before.uid
        assert {p.name: v for p, v in after.extractParamMap().items()} == {
            p.name: v for p, v in before.extractParamMap().items()
        }


def test_each_reader_reads_each_writers_model_with_every_param(
    spark, tmp_path, pyspark_io, monkeypatch
):
    model = _python_stages_model()
    write_pipeline_model(model, str(tmp_path / "ours"))
    _same(model, read_pipeline_model(str(tmp_path / "ours")))
    pyspark_io()
    model.write().save(str(tmp_path / "pyspark"))
    _same(model, PipelineModel.load(str(tmp_path / "ours")))
    _same(model, PipelineModel.load(str(tmp_path / "pyspark")))
    monkeypatch.undo()  # ctr_lab's readers again: a model saved before ctr_lab.persistence
    assert type(RowFeatures.read()).__module__ == "ctr_lab.persistence"
    _same(model, read_pipeline_model(str(tmp_path / "pyspark")))
    # The same files: each metadata line as PySpark's, and Spark's _SUCCESS beside it.
    ours, theirs = _metadata(tmp_path / "ours"), _metadata(tmp_path / "pyspark")
    assert len(theirs) == 4 and ours == theirs  # the pipeline and its three stages
    for name in ours:
        assert (tmp_path / "ours" / name / "metadata" / "_SUCCESS").is_file()


def test_python_stages_are_saved_and_loaded_without_a_spark_job(spark, tmp_path, pyspark_io):
    """PySpark 3.5 runs a job in a Python worker for each metadata file, 4.x a SQL job."""
    model = _python_stages_model()
    sc = spark.sparkContext
    try:
        sc.setJobGroup("persistence-ours", "ctr_lab.persistence")
        write_pipeline_model(model, str(tmp_path / "ours"))
        read_pipeline_model(str(tmp_path / "ours"))
        pyspark_io()
        sc.setJobGroup("persistence-pyspark", "PySpark's writer and reader")
        model.write().save(str(tmp_path / "pyspark"))
        PipelineModel.load(str(tmp_path / "pyspark"))
    finally:
        sc.setLocalProperty("spark.jobGroup.id", None)
    assert _jobs(spark, "persistence-pyspark") >= 4 + 7  # 4 files written; 7 reads
    assert _jobs(spark, "persistence-ours") == 0


def test_each_metadata_file_is_read_once(spark, tmp_path, monkeypatch):
    """The pipeline's file, then each stage's: the class looked up and the stage built from it."""
    from ctr_lab.fs import HadoopFs

    write_pipeline_model(_python_stages_model(), str(tmp_path / "m"))
    read: List[str] = []
    real = HadoopFs.read_text

    def counted(fs: HadoopFs, path: str) -> Optional[str]:
        read.append(path)
        return real(fs, path)

    monkeypatch.setattr(HadoopFs, "read_text", counted)
    read_pipeline_model(str(tmp_path / "m"))
    assert len(read) == 1 + 3 and len(set(read)) == len(read)


@pytest.mark.parametrize(
    ("named", "said"),
    [
        ("this.Zen", "is neither Spark ML's nor ctr_lab's, and is not imported"),
        ("pyspark.mlx.Stage", "is neither Spark ML's nor ctr_lab's, and is not imported"),
        ("ctr_lab.train.stages.NoSuchStage", "does not exist here"),
        ("pyspark.ml.nosuch.Stage", "does not exist here"),
        ("ctr_lab.train.store.fit_or_load", "does not exist here"),  # a function, not a class
    ],
)
def test_a_stage_class_from_elsewhere_is_refused_before_it_is_imported(
    spark, tmp_path, capsys, named, said
):
    """A model folder is data a student hands in: its metadata must not make the grader import
    a module of its choosing (``this`` prints the Zen of Python when imported)."""
    import sys

    from ctr_lab.errors import CtrLabError

    folder = tmp_path / "m"
    write_pipeline_model(_python_stages_model(), str(folder))
    part = sorted(folder.glob("stages/1_*/metadata/part-00000"))[0]
    meta = json.loads(part.read_text())
    part.write_text(json.dumps({**meta, "class": named}) + "\n")
    (part.parent / f".{part.name}.crc").unlink()  # Hadoop's checksum of the file as written
    with pytest.raises(CtrLabError) as info:
        read_pipeline_model(str(folder))
    assert str(info.value) == (
        f"{part.parent.parent}: the stage class {named!r} {said}. "
        "Fix: save the model again with fit_or_load, tune or ctr-lab train"
    )
    assert "this" not in sys.modules and "Beautiful is better" not in capsys.readouterr().out
