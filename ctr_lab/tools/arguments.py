"""Argument types the ``ctr-lab`` subcommands share."""

from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    """A whole number above zero; ``_`` and ``,`` may group its digits.

    Examples
    --------
    >>> positive_int("1,000_000")
    1000000
    >>> positive_int("0")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: must be a positive whole number, not 0
    """
    try:
        value = int(text.replace("_", "").replace(",", ""))
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, not {text}")
    return value
