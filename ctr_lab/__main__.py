"""``python -m ctr_lab`` is the ``ctr-lab`` command."""

import sys

from ctr_lab.cli import main

sys.exit(main())
