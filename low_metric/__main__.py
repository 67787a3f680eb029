"""``python -m low_metric``: the ``low-metric`` command line."""

import sys

from low_metric.cli import main

sys.exit(main())
