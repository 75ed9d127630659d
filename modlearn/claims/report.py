"""What the claims say about a run, as text: verdicts, the numbers behind them, the key results."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..results import format_value
from .claim import Results
from .registry import CLAIMS, KEY_RESULTS


def verdicts(notebook: str, results: Results) -> list[tuple[str, bool | None]]:
    """`(claim text, held)` for each claim of `notebook` (held is None when a value is missing)."""
    return [(claim.text, claim.verdict(results)) for claim in CLAIMS.get(notebook, [])]


def claim_rows(notebook: str, results: Results) -> list[tuple[str, bool | None, dict[str, Any]]]:
    """`(claim text, held, the values it read)` for each claim of `notebook`."""
    return [
        (claim.text, claim.verdict(results), claim.evidence(results)) for claim in CLAIMS.get(notebook, [])
    ]


def format_evidence(evidence: Mapping[str, Any]) -> str:
    """`name value, name value` with numbers at 3 significant digits."""
    return ", ".join(f"{key} {format_value(value)}" for key, value in evidence.items())


def format_verdicts(all_results: Mapping[str, Results]) -> str:
    """Per notebook, each claim with `held` / `did NOT hold` / `not recorded` and this run's numbers
    behind it, and a summary line."""
    words = {True: "held", False: "did NOT hold", None: "not recorded"}
    lines, counts = [], {True: 0, False: 0, None: 0}
    for notebook, results in all_results.items():
        lines.append(notebook)
        for text, held, evidence in claim_rows(notebook, results):
            counts[held] += 1
            lines.append(f"  [{words[held]:>12}] {text}")
            if evidence:
                lines.append(f"  {'':>14} {format_evidence(evidence)}")
    lines.append(f"{counts[True]} claims held, {counts[False]} did not, {counts[None]} not recorded")
    return "\n".join(lines)


def key_results(notebook: str, results: Results) -> str:
    """`KEY_RESULTS[notebook]` filled from `results` (`not recorded: name` for a missing value)."""
    template = KEY_RESULTS.get(notebook)
    if template is None:
        return ""
    try:
        return template.format(**results)
    except KeyError as err:
        return f"not recorded: {err.args[0]}"


def format_key_results(all_results: Mapping[str, Results]) -> str:
    """`notebook  key results` lines, one per notebook."""
    width = max(map(len, all_results), default=0)
    return "\n".join(f"{nb:<{width}}  {key_results(nb, r)}" for nb, r in all_results.items())
