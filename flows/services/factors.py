"""Which factor series a study needs and how they reach the engine (``--model factor``).

The planner (:func:`flows.services.study.plan_study`) calls three functions here and nothing
else, so the factor model adds a few lines to it:

* :func:`check_factor_request` refuses a bad combination before anything is read,
* :func:`factor_symbols` names the held series the study must load (series choice and each
  leg's panel get them beside the leg's benchmark),
* :func:`leg_assets` drops the factors from a leg's studied assets (an asset regressed on
  itself has no abnormal return).

The engine receives the factors through :meth:`warehouse.studyspec.StudySpec.engine_kwargs`
(``factors=...``) and finds their returns in the leg's panel.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from warehouse.errors import InputError
from warehouse.studyspec import StudySpec

if TYPE_CHECKING:
    import pandas as pd


def check_factor_request(req: StudySpec) -> None:
    """``--model factor`` needs ``--factors``; ``--factors`` needs ``--model factor``; the
    hourly clock has no factor model yet (the hourly planner loads token series only)."""
    if req.model == "factor" and not req.factors:
        raise InputError("--model factor needs --factors (held symbols, e.g. --factors BTC,NVDA)")
    if req.factors and req.model != "factor":
        raise InputError(
            f"--factors {','.join(req.factors)} needs --model factor (got --model {req.model})"
        )
    if len(set(req.factors)) != len(req.factors):
        raise InputError(f"--factors {','.join(req.factors)} names a symbol twice")
    if req.factors and req.hourly:
        raise InputError("--model factor runs on daily closes only; drop --interval 1h")


def factor_symbols(catalog: pd.DataFrame, req: StudySpec) -> list[str]:
    """The held symbols of ``--factors`` (none for another model); an unknown one is refused
    with close matches, as ``--benchmark`` is."""
    from warehouse.studies import resolve_symbols

    if req.model != "factor":
        return []
    return resolve_symbols(catalog, req.factors, what="--factors")


def leg_assets(syms: Sequence[str], factors: Sequence[str]) -> list[str]:
    """A leg's assets without the factors."""
    return [s for s in syms if s not in set(factors)]


__all__ = ["check_factor_request", "factor_symbols", "leg_assets"]
