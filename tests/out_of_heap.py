"""A real out-of-memory error for a local Spark driver, for the tests of what a student then sees.

A task that allocates 400M longs (3.2 GB) on a 512 MiB driver: in local mode the driver runs the
task, and the task's ``OutOfMemoryError`` ends the driver JVM with exit code 52. The size comes
from ``id``, so Spark computes it in a task: a constant would be folded on the thread that plans
the query, whose error the JVM survives.
"""

DRIVER_MEMORY = "512m"
#: A Spark SQL expression over ``spark.range(1)`` (or ``range(1)`` in SQL).
EXPRESSION = "size(array_repeat(0L, CAST(id + 400000000 AS INT)))"
