"""`python -m modlearn.incubation --demo --out FILE` (see `modlearn.incubation.demo`)."""

from .demo import main

raise SystemExit(main())
