"""Errors a student can act on: each names the file, column or value at fault and the fix."""

from __future__ import annotations

import re
from typing import Optional

# The JVM's own words when an allocation fails, to the end of the line: ``java.lang.
# OutOfMemoryError: Java heap space`` (or ``GC overhead limit exceeded``, ...).
_JAVA_OOM = re.compile(r"java\.lang\.OutOfMemoryError[^\r\n]*")


class CtrLabError(Exception):
    """Base class of every error ``ctr_lab`` raises on purpose. The message is one line."""


class DataLoadError(CtrLabError):
    """A data file cannot be read: missing, empty, not CSV/Parquet, damaged, or not Avazu data."""

    def __init__(self, path: str, problem: str, fix: str) -> None:
        self.path = path
        self.problem = problem
        self.fix = fix
        super().__init__(f"{path}: {problem}. Fix: {fix}")


class SparkSetupError(CtrLabError):
    """A local Spark session cannot be started (Java missing or wrong, bad settings)."""


def java_out_of_memory(text: str) -> Optional[str]:
    """The JVM's line ``java.lang.OutOfMemoryError: ...`` if ``text`` (an error or a log) holds one.

    In local mode a task that runs out of heap ends the driver JVM (Spark's
    ``SparkUncaughtExceptionHandler``), so Python then sees an unrelated error, a failed call or a
    refused connection; the JVM's log says what happened.

    >>> log = "ERROR Executor: ...\\njava.lang.OutOfMemoryError: Java heap space\\n\\tat ..."
    >>> java_out_of_memory(log)
    'java.lang.OutOfMemoryError: Java heap space'
    >>> java_out_of_memory("ConnectionRefusedError: [Errno 111] Connection refused") is None
    True
    """
    found = _JAVA_OOM.search(text)
    return found.group(0).strip() if found else None
