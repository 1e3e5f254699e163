"""The registry of cross-sectional tests: one entry per test, in output order.

Every place that lists tests reads them from here: the engine (which tests exist and in which
order they are computed), ``EventStudyResult.summary()`` (:data:`SUMMARY_TESTS`), the report
table :func:`analysis.plots.test_table` (:data:`REPORT_TESTS`) and the ``null`` text of the tidy
``tests`` frame that the warehouse stores.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True)
class CrossSectionTest:
    """One cross-sectional test of the mean (cumulative) abnormal return.

    Attributes
    ----------
    code
        Key in ``result.tests["test"]``, in ``EventStudy(tests=...)`` and in the warehouse.
    label
        Full name (``"KP-adjusted BMP t"``).
    short_label
        Column header in :meth:`~analysis.results.EventStudyResult.summary`.
    report_label
        Column header in the report table (:func:`analysis.plots.test_table`).
    null
        Null hypothesis, as shown in the ``null`` column of the tests frame.
    stat_format
        Format spec of the statistic in the summary and report tables (``".0f"`` for the integer
        Wilcoxon V).
    """

    code: str
    label: str
    short_label: str
    report_label: str
    null: str
    stat_format: str = ".2f"

    def format_stat(self, stat: float) -> str:
        return format(stat, self.stat_format)


_ALL = (
    CrossSectionTest("t_cs", "Cross-sectional t", "t", "Cross-sect. t", "mean (C)AR = 0"),
    CrossSectionTest("patell", "Patell Z", "Patell", "Patell", "mean standardized (C)AR = 0"),
    CrossSectionTest("bmp", "BMP t", "BMP", "BMP", "mean standardized (C)AR = 0"),
    CrossSectionTest(
        "kp_bmp",
        "KP-adjusted BMP t",
        "KP-BMP",
        "KP-adj. BMP",
        "mean standardized (C)AR = 0, cross-correlated",
    ),
    CrossSectionTest(
        "corrado_rank", "Corrado rank", "Rank", "Corrado rank", "event-day ranks are not unusual"
    ),
    CrossSectionTest(
        "modified_rank",
        "Corrado-Zivney rank",
        "CZ rank",
        "Corrado-Zivney rank",
        "event-day standardized ranks = 1/2",
    ),
    CrossSectionTest(
        "cz_sign", "Corrado-Zivney sign", "CZ sign", "CZ sign", "(C)AR median = estimation median"
    ),
    CrossSectionTest(
        "generalized_sign",
        "Generalized sign",
        "GSign",
        "Gen. sign",
        "share of positive (C)AR = estimation share",
    ),
    CrossSectionTest("sign", "Sign", "Sign", "Sign", "share of positive (C)AR = 1/2"),
    CrossSectionTest(
        "wilcoxon",
        "Wilcoxon signed-rank V",
        "Wilcox V",
        "Wilcoxon",
        "(C)AR symmetric about 0",
        stat_format=".0f",
    ),
    CrossSectionTest("bw1980", "Brown-Warner 1980", "BW80", "BW 1980", "mean (C)AR = 0"),
    CrossSectionTest("bw1985", "Brown-Warner 1985", "BW85", "BW 1985", "mean (C)AR = 0"),
    CrossSectionTest("lamb", "Lamb 1995", "Lamb", "Lamb 1995", "mean (C)AR = 0"),
)

TESTS: Mapping[str, CrossSectionTest] = MappingProxyType({t.code: t for t in _ALL})
"""Every cross-sectional test by code, in output order."""

HEADLINE_TEST = "kp_bmp"
"""Kolari & Pynnonen (2010): robust to the cross-correlation of pairs that share a date."""

SUMMARY_TESTS: tuple[str, ...] = (
    "t_cs",
    "patell",
    "bmp",
    "kp_bmp",
    "corrado_rank",
    "generalized_sign",
    "wilcoxon",
)
"""Columns of the CAR table of ``summary()``."""

REPORT_TESTS: tuple[str, ...] = (
    HEADLINE_TEST,
    "bmp",
    "t_cs",
    "patell",
    "corrado_rank",
    "generalized_sign",
    "wilcoxon",
)
"""Columns of the report table: the headline first, then the robust ones."""


def select(codes: Iterable[str] | None = None) -> tuple[CrossSectionTest, ...]:
    """The tests with these codes, in registry order (every test for ``None``).

    Raises
    ------
    KeyError
        When a code is not in :data:`TESTS`.
    """
    if codes is None:
        return _ALL
    want = tuple(codes)
    unknown = [c for c in dict.fromkeys(want) if c not in TESTS]
    if unknown:
        raise KeyError(f"Unknown test(s) {', '.join(unknown)}; choose from {', '.join(TESTS)}.")
    return tuple(t for t in _ALL if t.code in want)
