"""A pytest plugin for ``make notebooks-check``: nbval's kernels start their sessions in one JVM.

nbval starts a kernel per notebook, and each kernel would start a driver JVM of its own: cold
classes and cold code in every notebook. As ``ctr-lab run`` does, this plugin starts one local
driver JVM (:func:`ctr_lab.session.shared_driver`) before the first notebook, with the
JVM-start settings of the first ``%%configure``, and hands it to every kernel through the
environment they inherit. A notebook whose ``%%configure`` asks for other JVM-start settings
still gets a JVM of its own (:func:`ctr_lab.session.jvm_fits`), so the outputs compared are the
ones a student's own JVM gives. After each notebook, a session its kernel left running (a
failed cell before ``%%cleanup``) is stopped, so the next notebook can start its own.

Used as ``pytest -p tests.nbval_shared_jvm --nbval notebooks ...`` (see the Makefile).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Optional

import pytest

_STACK = contextlib.ExitStack()
_DRIVER: Optional[object] = None


def pytest_sessionstart(session: pytest.Session) -> None:
    global _DRIVER
    from ctr_lab.session import shared_driver
    from ctr_lab.tools.casestudy import driver_settings, notebooks_dir, ordered_notebooks

    root = notebooks_dir()
    log = Path(session.config.rootpath) / "build" / "nbval-driver.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    driver = _STACK.enter_context(
        shared_driver(driver_settings(ordered_notebooks(root)), cwd=str(root), log=str(log))
    )
    saved = {name: os.environ.get(name) for name in driver.env}
    os.environ.update(driver.env)

    def restore() -> None:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    _STACK.callback(restore)
    _DRIVER = driver


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: Optional[pytest.Item]):
    yield  # nbval shuts the notebook's kernel down in the teardown of its last cell
    if _DRIVER is not None and (nextitem is None or nextitem.parent is not item.parent):
        _DRIVER.stop_leftover_session()  # type: ignore[attr-defined]


def pytest_sessionfinish(session: pytest.Session) -> None:
    _STACK.close()
