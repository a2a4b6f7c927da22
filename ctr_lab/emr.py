"""Placeholder until the `emr` command lands."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `ctr-lab emr`."""
