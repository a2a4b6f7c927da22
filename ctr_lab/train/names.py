"""The names of the lab's pipelines: the one list, light enough for the command line to import.

Each name is built by the function ``_<name>`` in :mod:`ctr_lab.train.pipelines`.
"""

PIPELINE_NAMES = ("course_baseline", "course_improved", "recommended")
