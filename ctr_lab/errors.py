"""Errors a student can act on: each names the file, column or value at fault and the fix."""

from __future__ import annotations


class CtrLabError(Exception):
    """Base class of every error ``ctr_lab`` raises on purpose. The message is one line."""


class DataLoadError(CtrLabError):
    """A data file cannot be read: missing, empty, not CSV/Parquet, damaged, or not Avazu data;
    or a location (data or model) on a file system this machine lacks."""

    def __init__(self, path: str, problem: str, fix: str) -> None:
        self.path = path
        self.problem = problem
        self.fix = fix
        super().__init__(f"{path}: {problem}. Fix: {fix}")


class SparkSetupError(CtrLabError):
    """A local Spark session cannot be started (Java missing or wrong, bad settings)."""


def spark_problem(exc: Exception) -> str:
    """One line from a Spark/Py4J error: its root cause, without the Java stack trace."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    causes = [line[len("Caused by:") :].strip() for line in lines if line.startswith("Caused by:")]
    causes += [line[1:].strip() for line in lines if line.startswith(": ")]
    causes += [line for line in lines if not line.startswith(("at ", "Traceback", "py4j", "JVM"))]
    if not causes:
        return type(exc).__name__
    cause = causes[0]
    if "Path does not exist" in cause or "java.io.FileNotFoundException" in cause:
        return "no such file"  # Spark's words for it, then Hadoop's
    return cause[:300]
