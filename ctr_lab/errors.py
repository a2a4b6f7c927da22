"""Errors a student can act on: each names the file, column or value at fault and the fix."""

from __future__ import annotations


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
