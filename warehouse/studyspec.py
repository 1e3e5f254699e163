"""Every option of an event study, declared once.

:class:`StudySpec` is the typed request of ``aitokens study`` (and the pipeline's study). Each
field carries one :class:`Option` in its ``metadata``: the click name, help text, parser and how
it is echoed. From that one declaration are derived

* the click options of ``aitokens study`` (:func:`flows.cli.options.study_options`),
* the canonical command line stored with a run (:meth:`StudySpec.command`), the inverse of the
  parser,
* the options ``--rerun`` refuses (:func:`study_option_names`): every option of the spec, since
  a rerun reuses the stored spec,
* the engine's arguments (:meth:`StudySpec.engine_kwargs`).

The module lives in ``warehouse`` (the stored spec is the warehouse's record of a run, and the
lowest room, so ``analysis`` and ``flows`` both may import it; importing ``analysis`` would load
the engine at every CLI start). It imports neither click nor anything of ours: the CLI turns the
metadata into click options. Adding an option = adding one field.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Literal, get_args

from warehouse.errors import InputError

Interval = Literal["1d", "1h"]
Model = Literal["market", "market_adjusted", "constant_mean", "factor"]
Convention = Literal["textbook", "estudy2"]
Measure = Literal["returns", "volume"]
ReturnKind = Literal["simple", "log"]

INTERVALS: tuple[str, ...] = get_args(Interval)
MODELS: tuple[str, ...] = get_args(Model)
CONVENTIONS: tuple[str, ...] = get_args(Convention)
MEASURES: tuple[str, ...] = get_args(Measure)
RETURN_KINDS: tuple[str, ...] = get_args(ReturnKind)

DEFAULT_BENCHMARK = "BTC"
DEFAULT_EQUITY_BENCHMARK = "SPY"
DEFAULT_ESTIMATION = "-120:-11"
DEFAULT_WINDOW = "-5:10"

Echo = Literal["changed", "always"]


def split_list(values: Sequence[str]) -> list[str]:
    """``("FET,AGIX", "RNDR")`` -> ``["FET", "AGIX", "RNDR"]`` (repeatable, comma-separated)."""
    out = []
    for v in values:
        out += [s.strip() for s in v.split(",") if s.strip()]
    return out


def _upper(text: str) -> str:
    return text.strip().upper()


def _upper_list(values: Sequence[str]) -> list[str]:
    return [v.upper() for v in split_list(values)]


def _no_spaces(text: str) -> str:
    return text.replace(" ", "")


@dataclass(frozen=True)
class Option:
    """How one spec field appears on the command line.

    ``flag`` is the click name (``--model``); ``param`` the click parameter name when it differs
    from the field (``--event`` -> ``events``). ``parse`` turns click's value into the field's;
    ``join`` echoes a list field as one comma-joined value instead of one flag per item.
    ``negate`` declares a field stored positively behind a ``--no-...`` flag (``placebo``).
    ``echo`` says whether the command line always carries the option or only when it differs
    from the default; ``echo_if`` drops it where it means nothing (equities with
    ``--no-equities``)."""

    flag: str
    help: str = ""
    metavar: str | None = None
    choices: tuple[str, ...] | None = None
    multiple: bool = False
    is_flag: bool = False
    negate: bool = False
    type: type | None = None
    param: str | None = None
    parse: Callable[[Any], Any] | None = None
    join: bool = False
    echo: Echo = "changed"
    echo_if: Callable[[StudySpec], bool] | None = None
    show_default: bool = False


def _opt(default: Any = None, *, factory: Callable[[], Any] | None = None, **meta: Any) -> Any:
    """A dataclass field carrying its :class:`Option` (one declaration per option)."""
    md = {"option": Option(**meta)}
    if factory is not None:
        return field(default_factory=factory, metadata=md)
    return field(default=default, metadata=md)


def _with_equities(s: StudySpec) -> bool:
    return not s.no_equities


def _with_regress(s: StudySpec) -> bool:
    return bool(s.regress)


def _with_factors(s: StudySpec) -> bool:
    return bool(s.factors) or s.model == "factor"


@dataclass
class StudySpec:
    """What the user asked for, as given on the command line (fields in echo order)."""

    interval: Interval = _opt(
        "1d",
        flag="--interval",
        choices=INTERVALS,
        show_default=True,
        help="Clock: 1d (UTC days; NYSE sessions for equities) or 1h (tokens on UTC hours, from "
        "hourly closes; windows count hours; equities stay daily and are left out).",
    )
    events: list[str] = _opt(
        factory=list,
        flag="--event",
        multiple=True,
        metavar="NAME|DATE",
        help="Catalog name (sora) or date/timestamp (2024-02-15); repeat for a multi-event study.",
    )
    event_times: list[str] = _opt(
        factory=list,
        flag="--event-time",
        multiple=True,
        metavar="TIMESTAMP",
        help="Exact time of the event with its zone (2024-02-15T18:00Z); one per --event.",
    )
    assets: list[str] = _opt(
        factory=list,
        flag="--assets",
        multiple=True,
        parse=split_list,
        join=True,
        help="Symbols, comma-separated (FET,AGIX).",
    )
    category: str | None = _opt(
        None,
        flag="--category",
        help="A category: artificial-intelligence = every ai_token symbol and CoinGecko member.",
    )
    benchmark: str = _opt(
        DEFAULT_BENCHMARK,
        flag="--benchmark",
        show_default=True,
        parse=_upper,
        echo="always",
        help="Token benchmark.",
    )
    no_equities: bool = _opt(
        False, flag="--no-equities", is_flag=True, help="Study the tokens only."
    )
    equities: list[str] = _opt(
        factory=list,
        flag="--equities",
        multiple=True,
        parse=split_list,
        join=True,
        echo_if=_with_equities,
        help="Equities, comma-separated (default NVDA,AMD when held).",
    )
    equity_benchmark: str = _opt(
        DEFAULT_EQUITY_BENCHMARK,
        flag="--equity-benchmark",
        show_default=True,
        parse=_upper,
        echo="always",
        echo_if=_with_equities,
        help="Benchmark of the equities.",
    )
    estimation: str = _opt(
        DEFAULT_ESTIMATION,
        flag="--estimation",
        show_default=True,
        metavar="A:B",
        echo="always",
        help="Estimation window in sessions (hours with --interval 1h) relative to day 0.",
    )
    window: str = _opt(
        DEFAULT_WINDOW,
        flag="--window",
        show_default=True,
        metavar="A:B",
        echo="always",
        help="Event window in sessions (hours with --interval 1h) relative to day 0.",
    )
    model: Model = _opt(
        "market",
        flag="--model",
        choices=MODELS,
        show_default=True,
        echo="always",
        help="Normal-return model; factor = OLS on the --factors (MacKinlay 1997 variances "
        "generalised to k regressors).",
    )
    factors: list[str] = _opt(
        factory=list,
        flag="--factors",
        multiple=True,
        metavar="SYMBOLS",
        parse=_upper_list,
        join=True,
        echo_if=_with_factors,
        help="Factor return series of --model factor, comma-separated held symbols (BTC,NVDA).",
    )
    cars: list[str] = _opt(
        factory=list,
        flag="--car",
        multiple=True,
        metavar="A:B",
        help="CAR window (repeatable); default [0,0] [0,1] [-1,1] [0,3] [0,5] [0,10] and the "
        "window.",
    )
    sources: list[str] = _opt(
        factory=list,
        flag="--source",
        multiple=True,
        metavar="SOURCE|SYMBOL=SOURCE",
        help="Source to read when a symbol has several (default: most observations in the span).",
    )
    min_obs: int | None = _opt(
        None, flag="--min-obs", type=int, help="Minimum estimation returns per asset."
    )
    # calendar-time placebo inference for a study with one shared date
    placebo: bool = _opt(
        True,
        flag="--no-placebo",
        param="no_placebo",
        is_flag=True,
        negate=True,
        help="Skip the calendar-time placebo distribution (on by default for one shared event "
        "date: the same study on every other date of the history outside catalog event windows).",
    )
    # keep pairs whose windows touch a quarantined point (issue 22), flagged in the output
    allow_suspect: bool = _opt(
        False,
        flag="--allow-suspect",
        is_flag=True,
        help="Keep pairs whose windows touch a quarantined point (aitokens check), flagged.",
    )
    measure: Measure = _opt(
        "returns",
        flag="--measure",
        choices=MEASURES,
        show_default=True,
        help="returns, or volume: abnormal log volume (Campbell & Wasley 1996), not stored.",
    )
    by_group: bool = _opt(
        False,
        flag="--by-group",
        is_flag=True,
        help="Also each group's CAAR with the tests, and Welch/rank-sum tests between groups.",
    )
    regress: str = _opt(
        "",
        flag="--regress",
        metavar="NAMES",
        parse=_no_spaces,
        help="Regress one window's CARs on log_cap, beta, pre_return, log_volume, group:<name> "
        "(comma-separated), OLS with HC3 errors.",
    )
    regress_window: str = _opt(
        "",
        flag="--regress-window",
        metavar="A:B",
        echo_if=_with_regress,
        help="CAR window of --regress (default 0:5; added to the CAR windows when missing).",
    )
    wls: bool = _opt(
        False,
        flag="--wls",
        is_flag=True,
        echo_if=_with_regress,
        help="--regress by WLS with weights 1/Var(CAR).",
    )
    convention: Convention = _opt(
        "textbook",
        flag="--convention",
        choices=CONVENTIONS,
        show_default=True,
        help="Formulas where the papers and the R package estudy2 differ (residual variance, "
        "market moments, rank-test scaling, generalized-sign p-hat, sign-test p-values): textbook "
        "follows the cited papers; estudy2 reproduces the package.",
    )
    return_kind: ReturnKind = _opt(
        "simple",
        flag="--return-kind",
        choices=RETURN_KINDS,
        show_default=True,
        help="Returns from closes: simple (P_t / P_t-1 - 1) or log (ln P_t - ln P_t-1).",
    )

    @property
    def hourly(self) -> bool:
        return self.interval == "1h"

    @classmethod
    def from_cli(cls, values: dict[str, Any]) -> StudySpec:
        """The spec from click's parsed values (keyed by parameter name), each field parsed by
        its option's parser; keys that are not study options are ignored."""
        kwargs: dict[str, Any] = {}
        for f, opt in study_fields():
            name = opt.param or f.name
            if name not in values:
                continue
            value = values[name]
            if opt.negate:
                value = not value
            elif opt.multiple and opt.parse is None:
                value = list(value)
            if opt.parse is not None and value is not None:
                value = opt.parse(value)
            kwargs[f.name] = value
        return cls(**kwargs)

    @classmethod
    def from_command(cls, text: str) -> StudySpec:
        """The spec of a command line :meth:`command` wrote (its inverse; stored studies keep
        their command, so a report or a replay rebuilds the request the run was given). An
        option this version does not know is refused with its name."""
        args = shlex.split(text)
        if args[:2] != ["aitokens", "study"]:
            raise InputError(f"not an aitokens study command line: {text!r}")
        by_flag = {opt.flag: (f, opt) for f, opt in study_fields()}
        values: dict[str, Any] = {}
        rest = args[2:]
        while rest:
            flag, *rest = rest
            if flag not in by_flag:
                raise InputError(f"stored command {text!r}: unknown option {flag}")
            f, opt = by_flag[flag]
            name = opt.param or f.name
            if opt.is_flag:
                values[name] = True
                continue
            if not rest:
                raise InputError(f"stored command {text!r}: {flag} has no value")
            raw, *rest = rest
            value: Any = opt.type(raw) if opt.type is not None else raw
            if opt.multiple:
                values.setdefault(name, []).append(value)
            else:
                values[name] = value
        return cls.from_cli(values)

    def command(self) -> str:
        """The canonical command line of this spec (stored with the run): each option in field
        order, when it is always echoed or differs from its default."""
        args = ["aitokens", "study"]
        for f, opt in study_fields():
            value = getattr(self, f.name)
            if opt.echo_if is not None and not opt.echo_if(self):
                continue
            if opt.is_flag:  # --wls when True; --no-placebo when placebo is False
                if value != opt.negate:
                    args.append(opt.flag)
                continue
            if opt.echo != "always" and value == _default(f):
                continue
            if opt.multiple:
                items = [",".join(value)] if opt.join else list(value)
                for item in items:
                    args += [opt.flag, str(item)]
            elif value is not None:
                args += [opt.flag, str(value)]
        return " ".join(shlex.quote(a) for a in args)

    def engine_kwargs(self) -> dict[str, Any]:
        """The engine options this spec fixes for every leg (``EventStudy`` keywords); the
        windows, benchmarks and assets are resolved per leg by the planner."""
        return {
            "model": self.model,
            "factors": tuple(self.factors),
            "min_estimation_obs": self.min_obs,
            "convention": self.convention,
            "return_kind": self.return_kind,
        }


def _default(f: Any) -> Any:
    return f.default_factory() if f.default_factory is not MISSING else f.default


def study_fields() -> list[tuple[Any, Option]]:
    """``(field, option)`` for every study option, in declaration (= echo) order."""
    return [(f, f.metadata["option"]) for f in fields(StudySpec) if "option" in f.metadata]


def study_option_names() -> dict[str, str]:
    """Click parameter name -> flag, for every study option (what ``--rerun`` refuses)."""
    return {opt.param or f.name: opt.flag for f, opt in study_fields()}


__all__ = [
    "CONVENTIONS",
    "DEFAULT_BENCHMARK",
    "DEFAULT_EQUITY_BENCHMARK",
    "DEFAULT_ESTIMATION",
    "DEFAULT_WINDOW",
    "INTERVALS",
    "MEASURES",
    "MODELS",
    "RETURN_KINDS",
    "Option",
    "StudySpec",
    "split_list",
    "study_fields",
    "study_option_names",
]
