"""`python -m modlearn.series`: see `modlearn.series.main`."""

import sys

from . import main

sys.exit(main())
