"""The Jupyter server's hook that keeps a saved notebook's kernelspec EMR's (``make lab``).

Opening a notebook in JupyterLab on a laptop starts the local kernel, which the notebooks'
kernelspec names (``pysparkkernel``). JupyterLab writes the running kernel's display name into
the notebook; a kernel installed under another display name than the notebooks' (an earlier
version's "PySpark (local Spark, ctr-lab)") makes its autosave rewrite every notebook left open
for two minutes: a student's clone shows the course's notebooks changed though nobody edited
them, and the next ``git pull`` stops on them. Run by the server before it writes a notebook
(``ContentsManager.pre_save_hook``, set by ``tools/jupyter_server_config.json``, which ``make
lab`` puts in ``.venv``), :func:`keep_emr_kernelspec` writes the display name the notebooks
carry instead, so a notebook opened and saved unchanged is the repository's file, byte for byte.
"""

from __future__ import annotations

from typing import Any, Dict

from ctr_lab.tools.casestudy import KERNELSPEC


def keep_emr_kernelspec(model: Dict[str, Any], **_: Any) -> None:
    """Give a notebook ``model`` about to be saved under ``pysparkkernel`` EMR's display name.

    Examples
    --------
    >>> spec = {"name": "pysparkkernel", "display_name": "PySpark (local Spark, ctr-lab)"}
    >>> model = {"type": "notebook", "content": {"metadata": {"kernelspec": spec}}}
    >>> keep_emr_kernelspec(model)
    >>> model["content"]["metadata"]["kernelspec"]["display_name"]
    'PySpark'
    """
    if model.get("type") != "notebook" or not isinstance(model.get("content"), dict):
        return
    spec = model["content"].get("metadata", {}).get("kernelspec")
    if isinstance(spec, dict) and spec.get("name") == KERNELSPEC["name"]:
        spec["display_name"] = KERNELSPEC["display_name"]
