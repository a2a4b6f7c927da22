"""Tools that work on the ``ctr_lab`` core; the core never imports them.

The core (``ctr_lab`` itself: session, schema, fs, errors, data, features, train, evaluate,
plots, samples, assignment) is what notebooks import and what executors get. The tools run on
the machine a student or an instructor types at:

``cli``
    The ``ctr-lab`` command.
``casestudy``
    ``ctr-lab run``: every notebook in order, headless.
``magics``
    The local Jupyter kernel that keeps Livy's rules on a laptop.
``jvm``
    The local driver JVM's class-data archive (``ctr-lab jvm-archive``).
``bench``
    ``ctr-lab bench``: the pipelines and their peers side by side.
``emr``
    ``ctr-lab emr``: package, upload, create, watch and terminate the lab's EMR cluster;
    ``emr_layout`` (executors from YARN memory) and ``emr_convert`` (the one-time Parquet
    conversion, run on the cluster by ``spark-submit``) beside it.
``bundle``
    The core as a zip for Spark's ``pyFiles``.
``synth``
    The synthetic Avazu-like generator that knows the truth (``ctr-lab make-data``).
``make_samples``
    Regenerates ``data_samples/`` from the recipes in :mod:`ctr_lab.samples` (``make samples``).
``arguments``
    Argument types the subcommands share.
"""
