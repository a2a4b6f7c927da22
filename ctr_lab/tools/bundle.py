"""Ship ``ctr_lab`` to machines that do not have it installed: a zip for ``pyFiles``.

On EMR the notebook code runs in a Livy session whose Python does not have the laptop's files, and
executors are other machines again. Spark's own mechanism delivers pure-Python packages: a zip with
the package at its root, named in ``pyFiles`` (Livy), ``spark.submit.pyFiles``, ``--py-files``
(``spark-submit``) or ``sc.addPyFile``. ``build_zip`` makes that zip from the installed package's
core (not :mod:`ctr_lab.tools`, which executors never need), the same bytes every time for the
same sources, so its sha256 identifies the code.

Examples
--------
>>> from ctr_lab.tools.bundle import build_zip
>>> import zipfile
>>> path = build_zip(tmp_path / "dist")
>>> path.name
'ctr_lab-0.1.0.zip'
>>> names = zipfile.ZipFile(path).namelist()
>>> "ctr_lab/__init__.py" in names, any(n.startswith("ctr_lab/tools/") for n in names)
(True, False)
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Iterator, Tuple, Union

import ctr_lab
from ctr_lab.samples import sha256_of

#: Files of the package that go into the zip (no caches, no compiled files).
_SUFFIXES = (".py", ".properties")
#: Every entry gets this timestamp, so the zip's bytes depend on the sources alone.
_FIXED_TIME = (2020, 1, 1, 0, 0, 0)


def package_dir() -> Path:
    """The folder of the ``ctr_lab`` package that is imported now."""
    return Path(ctr_lab.__file__).resolve().parent


def _entries() -> Iterator[Tuple[str, Path]]:
    """The core's files; the tools (``ctr_lab/tools``) never run on an executor."""
    root = package_dir()
    for path in sorted(root.rglob("*")):
        inside = path.relative_to(root)
        if "__pycache__" in path.parts or not path.is_file() or path.suffix not in _SUFFIXES:
            continue
        if inside.parts[0] == "tools":
            continue
        yield f"ctr_lab/{inside.as_posix()}", path


def build_zip(out_dir: Union[str, os.PathLike] = "build/dist") -> Path:
    """Write ``ctr_lab-<version>.zip`` (the package at the zip root) into ``out_dir``.

    Parameters
    ----------
    out_dir
        Folder for the zip; created if missing.

    Returns
    -------
    Path
        The zip. Written to a temporary name first and then renamed, so a reader never sees a
        half-written zip.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"ctr_lab-{ctr_lab.__version__}.zip"
    partial = target.with_name(target.name + ".partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, path in _entries():
            info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, path.read_bytes())
    os.replace(partial, target)
    return target


__all__ = ["build_zip", "package_dir", "sha256_of"]
