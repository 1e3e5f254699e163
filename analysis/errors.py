"""Typed errors and warnings of the analysis engine.

:class:`EventStudyInputError` is a ``ValueError`` (bad arguments, as numpy and pandas raise them)
and a :class:`warehouse.error_root.UserInputError` (the CLI exits 2 with its message); the
message of every error is one or more full sentences that say what is missing and how to fix it.
"""

from __future__ import annotations

from warehouse.error_root import UserInputError


class EventStudyInputError(UserInputError, ValueError):
    """The inputs of an event study are unusable (bad columns, windows, events or metadata)."""


class UnknownAssetError(EventStudyInputError):
    """An asset or benchmark named in the study is absent from the data or the metadata."""


class InsufficientHistoryError(EventStudyInputError):
    """No asset-event pair has enough history for the estimation and event windows."""


class WindowOutsideDataError(EventStudyInputError):
    """An event, or the windows around it, lies outside the dates covered by the data."""


class CalendarError(EventStudyInputError):
    """A trading calendar is unknown or an event timestamp cannot be placed on it."""


class AssetsExcludedWarning(UserWarning):
    """Some asset-event pairs were left out of a study; ``result.excluded`` says why."""


class NonSessionPriceWarning(UserWarning):
    """Prices dated on days that are not sessions of the asset's calendar were ignored."""
