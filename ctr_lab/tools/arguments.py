"""Argument types the ``ctr-lab`` subcommands share."""

from __future__ import annotations

import argparse
import math
import os

from ctr_lab.errors import CtrLabError


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


def finite_float(text: str) -> float:
    """A number that is neither nan nor infinite.

    Examples
    --------
    >>> finite_float("2.5")
    2.5
    >>> finite_float("nan")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: must be a finite number, not nan
    """
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, not {text}")
    return value


def positive_float(text: str) -> float:
    """A finite number above zero.

    Examples
    --------
    >>> positive_float("0.5")
    0.5
    >>> positive_float("-1")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: must be a positive number, not -1
    """
    try:
        value = finite_float(text)
    except argparse.ArgumentTypeError:
        value = 0.0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, not {text}")
    return value


def check_output_file(path: str, option: str, example: str) -> None:
    """Refuse, before any work, an output path that cannot be written as a file.

    A folder is refused, and so is a path whose folder cannot be made: a missing folder is made
    when the file is written, so the nearest part of the path that exists must be a folder this
    user may write in. ``option`` names the option in the message and ``example`` is a file name
    the fix suggests inside a folder that was given.

    Examples
    --------
    >>> check_output_file(str(tmp_path / "grades" / "ada.json"), "--json", "grade.json")
    >>> check_output_file(str(tmp_path), "--json", "grade.json")
    Traceback (most recent call last):
    ...
    ctr_lab.errors.CtrLabError: --json ... is a folder, not a file. Fix: name a file, e.g. ...
    """
    if os.path.isdir(path):
        raise CtrLabError(
            f"{option} {path} is a folder, not a file. Fix: name a file, e.g. "
            f"{option} {os.path.join(path, example)}"
        )
    existing = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise CtrLabError(
            f"{option} {path}: {existing} is a file, so no folder can hold {path}. Fix: name a "
            "file in a folder"
        )
    if not os.access(existing, os.W_OK):
        raise CtrLabError(
            f"{option} {path}: the folder {existing} is not writable. Fix: name a file in a "
            "folder you can write to"
        )
