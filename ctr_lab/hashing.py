"""Hashed feature vectors built by Spark SQL's own expressions: :class:`SqlFeatureHasher`.

Spark's ``FeatureHasher`` builds each row's vector in a Scala closure: it converts the row to
Java objects, formats ``column=value`` for every column, hashes it, then sorts a Scala 2.12
``Stream`` of (index, value) pairs. On the 1M-row bench data that was two thirds of the
features' computation, and no other public Spark stage builds vectors faster (BENCHMARKS.md,
"Where a warm featurize goes"). Here each index is a generated-code expression (Spark SQL's
``hash``, a Murmur3 with seed 42, then ``pmod``), and the vector's four parts (``type``,
``size``, ``indices``, ``values``: how ``VectorUDT`` stores a sparse vector) are an SQL
``struct``. That struct is then given ``VectorUDT`` as its type without touching the rows.
Spark has no public way to do that (no cast from a struct to a vector, and ``DataFrame.to``
refuses it), so the rows go to ``SparkSession.internalCreateDataFrame`` with the vector type in
the schema: Spark's own constructor of a DataFrame from rows already in its internal format,
package-private in Scala and reached here through Py4J, as PySpark reaches the JVM. The tests
run it on PySpark 3.5 and 4.x. Every array function used is one Spark compiles into its
generated code (``array_except``, ``sort_array``, ``flatten``), none of the lambda functions it
interprets row by row (``array_compact``, ``array_sort``). On the bench's 894,882 training
rows, warm, the vectors take 2.6 s against ``FeatureHasher``'s 9.4 s (BENCHMARKS.md, "Vectors
without lambda functions").

The vectors differ from ``FeatureHasher``'s in three documented ways:

* a categorical level's index is ``pmod(hash(column, CAST(value AS STRING)), numFeatures)``,
  Spark SQL's hash of the column's name and the value's text, not Spark ML's hash of the string
  ``"column=value"``; either way a level's index is a pure function of its column and its text;
* a numeric column has an index of its own after the hashed ones (``numFeatures + i`` for the
  ``i``-th numeric input column), so it never shares a weight with a level;
* two levels of one row that hash to the same index give 1.0 there, not 2.0.

As with ``FeatureHasher``, null values are left out, and strings and booleans are always
categories, numbers only when listed in ``categoricalCols``.

The output is a new DataFrame over the input's planned rows, so two things differ from a
stage Spark plans through:

* the input is computed whole: a query on the output cannot leave out the input's columns or
  push its filters into the input's scan (select and filter before the hasher instead);
* when the input's plan holds a shuffle (a window, a join), Spark's adaptive execution runs that
  shuffle as the output is created rather than at the first action; the work is done once
  either way. Cached input (as in :func:`ctr_lab.train.fit_featurized`) starts nothing.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from pyspark import keyword_only
from pyspark.ml import Transformer
from pyspark.ml.linalg import VectorUDT
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.param.shared import HasInputCols, HasOutputCol
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ctr_lab import sql
from ctr_lab.errors import CtrLabError
from ctr_lab.persistence import ParamsReadable, ParamsWritable

__all__ = ["SqlFeatureHasher"]


class _HasherParams(HasInputCols):
    """A hasher's params as Spark ML's ``FeatureHasher`` names them, and its rule for categories.

    Shared with :class:`ctr_lab.features.HashedFeatureVocabulary`, which names a hasher's indices.
    """

    categoricalCols: Param[List[str]] = Param(
        Params._dummy(),
        "categoricalCols",
        "numeric input columns hashed as categories (strings and booleans always are)",
        typeConverter=TypeConverters.toListString,
    )
    numFeatures: Param[int] = Param(
        Params._dummy(),
        "numFeatures",
        "the number of hashed indices (> 0); numeric columns get indices after them",
        typeConverter=TypeConverters.toInt,
    )

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._setDefault(categoricalCols=[], numFeatures=1 << 18)

    def getCategoricalCols(self) -> List[str]:
        """Gets the value of categoricalCols or its default value."""
        return self.getOrDefault(self.categoricalCols)

    def getNumFeatures(self) -> int:
        """Gets the value of numFeatures or its default value."""
        return self.getOrDefault(self.numFeatures)

    def categorical(self, dataset: DataFrame) -> Dict[str, bool]:
        """Input column -> whether it is hashed as a category (else placed as a number).

        Strings and booleans always are, numbers when listed in ``categoricalCols``: Spark ML's
        ``FeatureHasher``'s rule.
        """
        stage = type(self).__name__
        if not self.isDefined(self.inputCols) or not self.getInputCols():
            raise CtrLabError(f"{stage}: inputCols is not set. Fix: {stage}(inputCols=[...])")
        fields = {f.name: f.dataType for f in dataset.schema.fields}
        listed = set(self.getCategoricalCols())
        kinds = {}
        for name in self.getInputCols():
            kind = fields.get(name)
            if kind is None:
                raise CtrLabError(
                    f"{stage}: column {name} is not in the data "
                    f"(columns: {', '.join(dataset.columns)}). Fix: place the hasher after the "
                    "stage that makes it"
                )
            if isinstance(kind, (T.StringType, T.BooleanType)):
                kinds[name] = True
            elif isinstance(kind, T.NumericType):
                kinds[name] = name in listed
            else:
                raise CtrLabError(
                    f"{stage}: column {name} has type {kind.simpleString()}, which "
                    "cannot be hashed. Fix: cast it to string or a number"
                )
        return kinds


class SqlFeatureHasher(Transformer, _HasherParams, HasOutputCol, ParamsReadable, ParamsWritable):
    """Hash categorical columns and place numeric ones into one sparse vector, in Spark SQL.

    The params are ``FeatureHasher``'s. The vector has ``numFeatures`` hashed indices, then one
    index per numeric (non-categorical) input column, in the order of ``inputCols``. See the
    module's docstring for how the vectors differ from ``FeatureHasher``'s and why.

    Examples
    --------
    >>> df = spark.createDataFrame(
    ...     [("a", 1005, 2.5), ("b", None, None)], "site_category string, C1 int, user_count double"
    ... )
    >>> hasher = SqlFeatureHasher(inputCols=["site_category", "C1", "user_count"],
    ...                           categoricalCols=["C1"], numFeatures=16)
    >>> first, second = [row.features for row in hasher.transform(df).collect()]
    >>> first.size, len(first.indices), first[16], second.indices.size
    (17, 3, 2.5, 1)
    """

    _input_kwargs: Dict[str, Any]

    @keyword_only
    def __init__(
        self,
        *,
        inputCols: Optional[List[str]] = None,
        categoricalCols: Optional[List[str]] = None,
        numFeatures: int = 1 << 18,
        outputCol: str = "features",
    ) -> None:
        super().__init__()
        self._setDefault(outputCol="features")
        kwargs = {k: v for k, v in self._input_kwargs.items() if v is not None}
        self._set(**kwargs)

    def _vector(self, kinds: Dict[str, bool]) -> str:
        """The vector's struct, in SQL: one call through Py4J for the whole expression."""
        n = self.getNumFeatures()
        if n < 1:
            raise CtrLabError(f"SqlFeatureHasher: numFeatures is {n}. Fix: use 1 or more")
        names = self.getInputCols()
        levels = [c for c in names if kinds[c]]
        numbers = [c for c in names if not kinds[c]]
        level_at = [  # hash() skips a null argument, so a null value is caught first
            f"CASE WHEN {sql.name(c)} IS NOT NULL "
            f"THEN pmod(hash({sql.text(c)}, CAST({sql.name(c)} AS STRING)), {n}) END"
            for c in levels
        ]
        # Each index once and sorted (a vector's indices rise strictly), nulls left out, by
        # expressions Spark compiles: with array_compact and array_sort, lambda functions Spark
        # interprets row by row, the vectors took 1.8 times as long (BENCHMARKS.md, "Vectors
        # without lambda functions").
        level_indices = (
            f"sort_array(array_except({_array('int', level_at)}, {_array('int', ['NULL'])}))"
        )
        indices = _where_present("int", {c: str(n + i) for i, c in enumerate(numbers)})
        values = _where_present("double", {c: sql.name(c) for c in numbers})
        return (
            "named_struct("
            "'type', CAST(0 AS TINYINT), "  # VectorUDT's tag of a sparse vector
            f"'size', {n + len(numbers)}, "
            f"'indices', concat({level_indices}, {indices}), "
            f"'values', concat(array_repeat(CAST(1.0 AS DOUBLE), size({level_indices})), {values}))"
        )

    def _transform(self, dataset: DataFrame) -> DataFrame:
        out = self.getOutputCol()
        built = dataset.withColumn(out, F.expr(self._vector(self.categorical(dataset))))
        return _with_vector_type(built, out)


def _array(kind: str, items: List[str]) -> str:
    """``array(items)`` of ``kind``, in SQL; an empty one when there are no items."""
    if not items:
        return f"CAST(array() AS array<{kind}>)"
    return f"array({', '.join(f'CAST({x} AS {kind})' for x in items)})"


def _where_present(kind: str, items: Dict[str, str]) -> str:
    """An array of the items whose column is not null in the row, in column order (SQL).

    Each item is an array of one, empty when its column is null, and ``flatten`` joins them:
    generated code, where ``array_compact`` is a lambda function Spark interprets.
    """
    empty = _array(kind, [])
    arrays = [
        f"CASE WHEN {sql.name(c)} IS NOT NULL THEN {_array(kind, [x])} ELSE {empty} END"
        for c, x in items.items()
    ]
    return f"flatten({_array(f'array<{kind}>', arrays)})" if arrays else empty


def _with_vector_type(df: DataFrame, col_name: str) -> DataFrame:
    """``df`` with its struct column ``col_name`` typed as ``VectorUDT``, rows untouched.

    The struct has ``VectorUDT``'s own storage layout, so the rows Spark already computes are
    that type's rows; only the schema changes.
    """
    spark = df.sparkSession
    schema = T.StructType(
        [
            T.StructField(f.name, VectorUDT(), f.nullable) if f.name == col_name else f
            for f in df.schema.fields
        ]
    )
    jspark = spark._jsparkSession
    rows = df._jdf.queryExecution().toRdd()
    jdf = jspark.internalCreateDataFrame(rows, jspark.parseDataType(schema.json()), False)
    return type(df)(jdf, spark)
