"""What each notebook's text claims about its run, as checks on the values the notebook recorded.

One registry for the whole series: `tests/test_notebooks.py` asserts every claim after executing a
notebook, and `make run` (`modlearn.series`) prints each claim with its verdict for the learner's
own run. Every notebook records `budget` (from `setup`) and `dataset`; a threshold that differs
between runs comes from `for_run(r, smoke=..., cpu=..., mnist=...)`, each value measured (the
comments give the measured values).

`claim.py` holds the `Claim` and the shared thresholds, `nb00.py` ... `nb09.py` each notebook's
claims and its key-results line, `registry.py` gathers them, `report.py` renders verdicts.
"""

from .claim import Claim, Results, for_run, paired_verdict, undefined_as_nan
from .registry import CLAIMS, KEY_RESULTS
from .report import claim_rows, format_evidence, format_key_results, format_verdicts, key_results, verdicts

__all__ = [
    "CLAIMS",
    "KEY_RESULTS",
    "Claim",
    "Results",
    "claim_rows",
    "for_run",
    "format_evidence",
    "format_key_results",
    "format_verdicts",
    "key_results",
    "paired_verdict",
    "undefined_as_nan",
    "verdicts",
]
