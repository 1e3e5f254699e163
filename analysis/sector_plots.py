"""Figures of the sector report's market-cap sections when the caps come from any source (a cap
file, Coin Metrics, CoinGecko), not only from CoinGecko's category snapshots.

Kept apart from :mod:`analysis.plots` (the report figures) so the cap sections of issue 25 can
change without touching the others; the styling helpers are shared.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from analysis.plots import Marker, _date_axis, _usd_bn, mark_dates


def plot_tracked_market_cap(
    tracked: pd.DataFrame,
    references: pd.DataFrame | None = None,
    *,
    markers: Sequence[Marker] = (),
    title: str = "AI-token sector: tracked members' summed market cap",
) -> Figure:
    """The tracked members' summed cap per day (line), each cited sector figure (diamond, with
    the share the tracked sum reaches that day), and the members counted (lower panel).

    ``tracked``: ``date, n_members, market_cap_usd`` (the warehouse's ``ai_tracked_daily``);
    ``references``: ``date, reference_usd, share`` (:func:`analysis.sector.reference_coverage`).
    """
    t = tracked.sort_values("date")
    fig, (ax, ax2) = plt.subplots(
        2, 1, figsize=(12, 7.2), sharex=True, gridspec_kw={"height_ratios": [3, 1.2]}
    )
    ax.plot(
        t["date"],
        t["market_cap_usd"],
        lw=1.8,
        color="#1f77b4",
        label="tracked members' caps summed (each network once)",
    )
    if references is not None and len(references):
        ax.scatter(
            references["date"],
            references["reference_usd"],
            s=70,
            color="#ff7f0e",
            marker="D",
            zorder=5,
            label="cited sector figure",
        )
        for r in references.itertuples(index=False):
            if r.share == r.share:
                ax.annotate(
                    f"tracked: {100 * r.share:.0f}% of it",
                    (r.date, r.reference_usd),
                    xytext=(8, -4),
                    textcoords="offset points",
                    fontsize=9,
                )
    _usd_bn(ax)
    ax.set_ylabel("Market cap (USD bn)")
    ax.set_title(title)
    mark_dates(ax, markers)
    ax.legend(loc="upper left", frameon=True)
    ax2.step(t["date"], t["n_members"], where="post", color="#2ca02c", lw=1.5)
    ax2.set_ylabel("Members with a cap")
    ax2.set_xlabel("Date (UTC day)")
    ax2.set_ylim(0, max(1, int(t["n_members"].max())) + 1)
    mark_dates(ax2, markers, label_top=False)
    _date_axis(ax2)
    return fig


__all__ = ["plot_tracked_market_cap"]
