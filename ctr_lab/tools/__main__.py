"""``python -m ctr_lab.tools`` is the ``ctr-lab`` command."""

import sys

from ctr_lab.tools.cli import main

sys.exit(main())
