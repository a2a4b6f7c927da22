"""ctr_lab.persistence: Spark ML's model format, written and read without a Spark job per file.

The reference is PySpark's own writer and reader: the ``pyspark_io`` fixture gives ctr_lab's
stages back PySpark's ``DefaultParamsWritable.write`` and ``DefaultParamsReadable.read``, so
``model.write().save`` and ``PipelineModel.load`` then run PySpark's code alone.
"""

from __future__ import annotations

import json
import re
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


def _retag(part: Path, named: str) -> None:
    """Make the metadata in ``part`` name another class, as an edited folder would."""
    meta = json.loads(part.read_text())
    part.write_text(json.dumps({**meta, "class": named}) + "\n")
    (part.parent / f".{part.name}.crc").unlink()  # Hadoop's checksum of the file as written


def _nested_python_model() -> PipelineModel:
    """ctr_lab's stages with a pipeline of ctr_lab's stages inside (PySpark saves that one)."""
    return PipelineModel(stages=[RowFeatures(), _python_stages_model()])


def _jvm_model() -> PipelineModel:
    """A pipeline of Spark ML's stages only: the JVM saves it and the JVM reads it."""
    from pyspark.ml.feature import SQLTransformer

    return PipelineModel(stages=[SQLTransformer(statement="SELECT * FROM __THIS__")])


def test_a_pipeline_inside_a_pipeline_round_trips(spark, tmp_path):
    def params(stages) -> list:
        return [
            (type(s), s.uid, {p.name: v for p, v in s.extractParamMap().items()}) for s in stages
        ]

    model, folder = _nested_python_model(), tmp_path / "m"
    write_pipeline_model(model, str(folder))
    got = read_pipeline_model(str(folder))
    assert isinstance(got.stages[1], PipelineModel) and got.stages[1].uid == model.stages[1].uid
    assert params(got.stages[1].stages) == params(model.stages[1].stages)
    assert params(got.stages[:1]) == params(model.stages[:1])


@pytest.mark.parametrize(
    ("model", "stage", "named", "said"),
    [
        *[
            (_python_stages_model, "stages/1_*", named, said)
            for named, said in [
                ("this.Zen", "is neither Spark ML's nor ctr_lab's, and is not imported"),
                ("pyspark.mlx.Stage", "is neither Spark ML's nor ctr_lab's, and is not imported"),
                ("ctr_lab.train.stages.NoSuchStage", "does not exist here"),
                ("pyspark.ml.nosuch.Stage", "does not exist here"),
                ("ctr_lab.train.store.fit_or_load", "does not exist here"),  # not a class
            ]
        ],
        # PySpark's reader of a pipeline imports whatever class its stages' folders name.
        (
            _nested_python_model,
            "stages/1_*/stages/1_*",
            "this.Zen",
            "is neither Spark ML's nor ctr_lab's, and is not imported",
        ),
        (
            _nested_python_model,
            "stages/1_*/stages/1_*",
            "pyspark.ml.tuning.CrossValidatorModel",  # read by PySpark's reader of its folder
            "is not one a model of ctr_lab holds, and is not read",
        ),
        # The JVM's reader loads whatever class a stage's folder names.
        (_jvm_model, "stages/0_*", "java.lang.Runtime", "is not Spark ML's, and is not loaded"),
    ],
)
def test_a_stage_class_a_folder_names_is_checked_before_anything_imports_or_loads_it(
    spark, tmp_path, capsys, model, stage, named, said
):
    """A model folder is data a student hands in: its metadata must not make the grader import
    a module of its choosing (``this`` prints the Zen of Python when imported), at any depth."""
    import sys

    from ctr_lab.errors import CtrLabError

    folder = tmp_path / "m"
    write_pipeline_model(model(), str(folder))
    part = sorted(folder.glob(f"{stage}/metadata/part-*"))[0]  # Spark 4 adds a uuid
    _retag(part, named)
    with pytest.raises(CtrLabError) as info:
        read_pipeline_model(str(folder))
    assert str(info.value) == (
        f"{part.parent.parent}: the stage class {named!r} {said}. "
        "Fix: save the model again with fit_or_load, tune or ctr-lab train"
    )
    assert "this" not in sys.modules and "Beautiful is better" not in capsys.readouterr().out


@pytest.fixture(scope="module")
def models_holding_models(spark, tmp_path_factory) -> Dict[str, Path]:
    """Spark ML stages that hold instances of their own, which the JVM reads with
    ``loadParamsInstance``: in a pipeline the JVM saved, ``OneVsRestModel`` (a model per class);
    in one of ctr_lab's stages, ``RFormulaModel`` (a pipeline)."""
    from pyspark.ml.classification import LogisticRegression, OneVsRest
    from pyspark.ml.feature import RFormula
    from pyspark.ml.linalg import Vectors

    folders = tmp_path_factory.mktemp("held")
    rows = [(float(i % 2), Vectors.dense([float(i % 2), 1.0]), float(i)) for i in range(4)]
    df = spark.createDataFrame(rows, ["label", "features", "x"])
    one_vs_rest = OneVsRest(classifier=LogisticRegression(maxIter=1)).fit(df)
    PipelineModel(stages=[one_vs_rest])._to_java().write().save(str(folders / "jvm"))
    formula = RFormula(formula="label ~ x", featuresCol="f").fit(df)
    write_pipeline_model(PipelineModel(stages=[RowFeatures(), formula]), str(folders / "python"))
    return {"jvm": folders / "jvm", "python": folders / "python"}


@pytest.mark.parametrize(
    ("layout", "held", "change"),
    [
        *[("jvm", "stages/0_*/model_0", c) for c in ("retag", "a file beside", "a file for it")],
        ("python", "stages/1_*/pipelineModel/stages/1_*", "retag"),
    ],
)
def test_a_class_a_stage_the_jvm_reads_holds_is_checked_before_the_jvm_loads_it(
    spark, tmp_path, models_holding_models, layout, held, change
):
    """The JVM loads the class the first line of a held instance's metadata names: a class of
    the student's choosing, where the stage's own class is Spark ML's."""
    import shutil

    from ctr_lab.errors import CtrLabError

    folder = tmp_path / "m"
    shutil.copytree(models_holding_models[layout], folder)
    read_pipeline_model(str(folder))  # as saved
    held = next(folder.glob(held))
    part = sorted(held.glob("metadata/part-*"))[0]  # Spark 4 adds a uuid
    if change == "retag":
        _retag(part, "java.lang.Runtime")
        said = "the stage class 'java.lang.Runtime' is not Spark ML's"
    elif change == "a file beside":  # the JVM reads the first file the folder's listing gives
        runtime = re.sub(r'"class": ?"[^"]*"', '"class":"java.lang.Runtime"', part.read_text())
        (part.parent / "a").write_text(runtime)
        said = f"its metadata holds a, {part.name} where Spark ML writes one part-* file"
    else:  # sc.textFile reads a file named metadata as it reads the folder
        _retag(part, "java.lang.Runtime")
        text = part.read_text()
        shutil.rmtree(part.parent)
        (held / "metadata").write_text(text)
        said = "its metadata holds metadata where Spark ML writes one part-* file"
    with pytest.raises(CtrLabError) as info:
        read_pipeline_model(str(folder))
    assert str(info.value) == (
        f"{held}: {said}, and is not loaded. "
        "Fix: save the model again with fit_or_load, tune or ctr-lab train"
    )
