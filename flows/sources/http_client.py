"""The one HTTP client base of the sources, and the settings every HTTP source shares.

:class:`HttpClient` owns what CoinGecko, Yahoo (and any further vendor) would otherwise each
repeat: a ``requests`` session without hidden retries, the process-wide limiter of the host,
the count of HTTP attempts, the retrying GET (:func:`~flows.sources.http.call_with_retries`
under the config's :attr:`HttpSourceConfig.retry_policy`), secret scrubbing, the ``on_exchange``
report of every answer, and the generic error mapping:

=====================================================  =========================================
what happened                                          error (retryable?)
=====================================================  =========================================
timeout                                                :class:`UpstreamError` (yes)
refused / reset connection, body cut short             :class:`UpstreamError` (yes)
any other ``requests`` failure (bad URL, ...)          :class:`UpstreamError` (no)
HTTP 429                                               :class:`RateLimitedError` (yes, honours
                                                       ``Retry-After``)
an HTML page instead of JSON                           :class:`HtmlResponseError` (only if 5xx)
invalid or truncated JSON (2xx, 3xx, 5xx)              :class:`UpstreamError` (yes)
=====================================================  =========================================

What remains is the vendor's own: its error bodies and payload shapes, in
:meth:`HttpClient.interpret`, which receives the decoded JSON of every answer that got that far
(4xx and 5xx included) and returns the payload or raises a typed error.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, ClassVar, NamedTuple, Self

import requests

from flows.errors import (
    CallBudgetError,
    ConfigError,
    HtmlResponseError,
    RateLimitedError,
    UpstreamError,
)
from flows.redact import register_secret
from flows.sources.http import (
    DEFAULT_BACKOFF_BASE_SECONDS,
    DEFAULT_BACKOFF_MAX_SECONDS,
    DEFAULT_MAX_RETRY_SECONDS,
    DEFAULT_TIMEOUT_SECONDS,
    ExchangeCallback,
    RateLimiter,
    RetryPolicy,
    Scrubber,
    call_with_retries,
    env_float,
    looks_like_html,
    one_line,
    parse_retry_after,
    shared_limiter,
)
from flows.sources.transport import (
    ENV_HTTP_DEADLINE,
    BodyTooLarge,
    BoundedAdapter,
    BoundedSession,
    DeadlineExceeded,
    RedirectRefused,
    check_base_url,
)

ENV_ALLOW_CONFIG_BASE_URL = "AITOKENS_ALLOW_CONFIG_BASE_URL"
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
POOL_SIZE = 32  # connections kept per host: more than the fetch threads of a run


# ------------------------------------------------------------------------------ settings
Kind = str | tuple[str, ...]  # checked by flows.config: "positive", "names", "url", ... or choices
SETTING = "aitokens_setting"  # the dataclass field metadata key of a declared setting


@dataclass(frozen=True)
class Setting:
    """What makes a config field a setting: the ``aitokens.toml`` key is the field's name, the
    value is checked as ``kind`` (:func:`flows.config.parse_config`), and ``env`` is the
    environment variable that overrides the file."""

    kind: Kind
    env: str


def setting(default: Any, kind: Kind, env: str) -> Any:
    """Declare a vendor setting once, as a field of its config dataclass: its default, its
    ``aitokens.toml`` key (the field name) and kind, and the variable that overrides it. The
    source's ``settings_schema`` and :meth:`HttpSourceConfig.from_env` are derived from it."""
    return field(default=default, metadata={SETTING: Setting(kind, env)})


class HttpEnv(NamedTuple):
    """The environment variables that set a source's HTTP settings; messages name them."""

    url: str
    calls_per_minute: str
    timeout: str
    max_retry: str

    @classmethod
    def prefixed(cls, prefix: str) -> HttpEnv:
        """``<prefix>URL``, ``<prefix>CALLS_PER_MINUTE``, ``<prefix>TIMEOUT`` and
        ``<prefix>MAX_RETRY_SECONDS``: the names every vendor's HTTP settings follow."""
        names = ("URL", "CALLS_PER_MINUTE", "TIMEOUT", "MAX_RETRY_SECONDS")
        return cls(*(prefix + name for name in names))

    def settings_schema(self) -> dict[str, tuple[Kind, str]]:
        """The ``aitokens.toml`` keys every HTTP source has, each with the variable that
        overrides it (a source's own :func:`setting` fields come before these)."""
        return {
            "calls_per_minute": ("positive", self.calls_per_minute),
            "timeout_seconds": ("positive", self.timeout),
            "max_retry_seconds": ("non_negative", self.max_retry),
            "base_url": ("url", self.url),
        }


@dataclass(frozen=True)
class HttpSourceConfig:
    """Settings every HTTP source has: host, rate, timeout and retry budget.

    Vendors subclass it (a frozen dataclass too), may redeclare a field to give it their own
    default, set :attr:`env` and :attr:`section`, declare their own settings with
    :func:`setting` and call :meth:`check_http_settings` from ``__post_init__``.
    ``base_url`` always ends with ``/`` once checked.
    """

    env: ClassVar[HttpEnv]
    # The ``aitokens.toml`` section of these settings ("" for a config with no section).
    section: ClassVar[str] = ""
    # The vendor's own API roots: a ``base_url`` from the settings file that is none of these
    # needs ``AITOKENS_ALLOW_CONFIG_BASE_URL=1`` in the environment (see :meth:`file_settings`).
    official_base_urls: ClassVar[tuple[str, ...]] = ()

    base_url: str | None = None
    calls_per_minute: float | None = None
    max_retry_seconds: float = DEFAULT_MAX_RETRY_SECONDS
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    backoff_base_seconds: float = DEFAULT_BACKOFF_BASE_SECONDS
    backoff_max_seconds: float = DEFAULT_BACKOFF_MAX_SECONDS
    rate_window_seconds: float = 60.0  # the server counts calls per minute

    @classmethod
    def own_settings(cls) -> dict[str, Setting]:
        """The :func:`setting` fields of this section, in field order: a subclass with a
        section of its own (hourly CoinGecko) has only the settings it adds."""
        inherited: set[str] = set()
        for base in cls.__mro__[1:]:
            if is_dataclass(base) and vars(base).get("section"):
                inherited = {f.name for f in fields(base)}
                break
        return {
            f.name: f.metadata[SETTING]
            for f in fields(cls)
            if SETTING in f.metadata and f.name not in inherited
        }

    @classmethod
    def settings_schema(cls) -> dict[str, tuple[Kind, str | None]]:
        """``aitokens.toml`` key -> (kind, overriding variable) of :attr:`section`, derived
        from the declarations: the vendor's :func:`setting` fields, then the HTTP settings
        (unless a parent section holds those)."""
        own = cls.own_settings()
        schema: dict[str, tuple[Kind, str | None]] = {k: (s.kind, s.env) for k, s in own.items()}
        has_parent = any(vars(b).get("section") for b in cls.__mro__[1:])
        if not has_parent:
            schema.update(cls.env.settings_schema())
        return schema

    @classmethod
    def env_var(cls, name: str) -> str:
        """The environment variable of setting ``name``, for messages that say what to set."""
        kind_env = cls.settings_schema().get(name)
        if kind_env is None or kind_env[1] is None:
            raise KeyError(name)
        return kind_env[1]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Self:
        """Every declared setting from the environment over the settings file's
        :attr:`section`, over the defaults; ``overrides`` win."""
        import os

        env = os.environ if environ is None else environ
        kwargs: dict[str, Any] = cls.file_settings(cls.section, environ)
        kwargs.update(cls.settings_from_env(env))
        kwargs.update(overrides)
        return cls(**kwargs)

    def check_http_settings(self) -> None:
        """Add the trailing slash to ``base_url`` and refuse a rate, timeout or retry budget
        that cannot work, naming the variable that sets it."""
        if self.base_url is None:
            raise ConfigError(f"{self.env.url} is not set.")
        if not self.base_url.endswith("/"):
            object.__setattr__(self, "base_url", self.base_url + "/")
        check_base_url(self.base_url, self.env.url)
        if self.calls_per_minute is None or not self.calls_per_minute > 0:
            raise ConfigError(
                f"{self.env.calls_per_minute} must be positive, got {self.calls_per_minute}."
            )
        if not (self.timeout_seconds > 0 and math.isfinite(self.timeout_seconds)):
            raise ConfigError(
                f"{self.env.timeout} must be a positive number of seconds, "
                f"got {self.timeout_seconds}."
            )
        if not self.max_retry_seconds >= 0:
            raise ConfigError(
                f"{self.env.max_retry} must be zero or more, got {self.max_retry_seconds}."
            )

    @classmethod
    def file_settings(
        cls, section: str, environ: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        """The settings file's ``[section]`` values not overridden by the environment
        (:func:`flows.config.merged_settings`), with its ``base_url`` checked.

        A ``base_url`` from the file that is not the vendor's own API is refused unless
        ``AITOKENS_ALLOW_CONFIG_BASE_URL=1`` is set in the environment: an ``aitokens.toml``
        is read from whatever folder the command runs in (a cloned repository, a shared
        folder), and must not be able to send the API key and the run to a host of its
        choosing. The opt-in lives outside the file on purpose, as a planted file could
        carry its own. ``AITOKENS_<VENDOR>_URL`` in the environment needs no opt-in.
        """
        import os

        from flows.config import load_config, merged_settings

        env = os.environ if environ is None else environ
        if not section:
            return {}  # a config without a section of the settings file
        values = merged_settings(section, environ)
        url = values.get("base_url")
        if url is not None:
            wanted = url.rstrip("/") + "/"
            allowed = env.get(ENV_ALLOW_CONFIG_BASE_URL, "").strip().lower() in TRUE_WORDS
            if wanted not in cls.official_base_urls and not allowed:
                label = load_config(environ).label
                official = ", ".join(cls.official_base_urls) or "the vendor's"
                raise ConfigError(
                    f"{label} [{section}] base_url = {url!r} is not the vendor's API "
                    f"({official}); a base URL from the settings file is used only with "
                    f"{ENV_ALLOW_CONFIG_BASE_URL}=1 in the environment (or set {cls.env.url})."
                )
        return values

    @classmethod
    def settings_from_env(cls, env: Mapping[str, str]) -> dict[str, Any]:
        """The declared settings that the environment sets, read by kind: numbers checked by
        :func:`env_float`, lists split at commas, choices lower-cased, URLs stripped."""
        values: dict[str, Any] = {}
        for name, (kind, var) in cls.settings_schema().items():
            raw = env.get(var, "").strip() if var else ""
            if not raw:
                continue
            if kind in ("positive", "non_negative"):
                values[name] = env_float(env, str(var))
            elif kind == "names":
                values[name] = tuple(v.strip() for v in raw.split(",") if v.strip())
            elif isinstance(kind, tuple):
                values[name] = raw.lower()
            else:
                values[name] = raw
        return values

    @property
    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            self.max_retry_seconds, self.backoff_base_seconds, self.backoff_max_seconds
        )


# ------------------------------------------------------------------------------ budget
ENV_MAX_CALLS = "AITOKENS_MAX_CALLS_PER_RUN"
DEFAULT_MAX_CALLS = 100_000


class CallBudget:
    """At most ``limit`` HTTP attempts (retries included) for one run; thread-safe.

    A server that never ends (pages repeating forever, ids without end) stops the run at the
    cap with :class:`CallBudgetError` instead of spending the API's quota.
    """

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ConfigError(f"{ENV_MAX_CALLS} must be at least 1, got {limit}.")
        self.limit = limit
        self.spent = 0
        self._lock = threading.Lock()

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> CallBudget:
        raw = env.get(ENV_MAX_CALLS, "").strip()
        if not raw:
            return cls(DEFAULT_MAX_CALLS)
        try:
            return cls(int(raw))
        except ValueError:
            raise ConfigError(f"{ENV_MAX_CALLS}={raw!r} is not a whole number.") from None

    def spend(self, what: str, n: int = 1) -> None:
        with self._lock:
            if self.spent + n > self.limit:
                raise CallBudgetError(
                    f"{what}: the run reached its cap of {self.limit:,} HTTP calls "
                    f"({ENV_MAX_CALLS}); stopped. Raise the cap if the run really needs more."
                )
            self.spent += n


# ------------------------------------------------------------------------------ client
class HttpClient:
    """A vendor's JSON API over one ``requests`` session: limiter, retries, scrubbing, typed
    errors. Subclasses set :attr:`vendor`, add one method per endpoint calling :meth:`get`, and
    override :meth:`interpret` for their error bodies and shapes.

    ``on_exchange(endpoint, params, status, body)`` is called for every answer (retries
    included) with any secret scrubbed; it may be called from several threads at once.
    ``calls`` counts HTTP attempts. ``secrets`` are scrubbed from whatever is logged, raised or
    reported; ``session`` lets a vendor library's own session be used (its hidden retries are
    switched off all the same).
    """

    vendor: ClassVar[str]  # first word of every message: "CoinGecko /coins/markets: ..."
    # Whether a 4xx whose body is not JSON is still handed to interpret (payload None), to be
    # classified by its status; otherwise it is an "invalid or truncated JSON" error.
    classify_text_client_errors: ClassVar[bool] = False
    # Whether the timeout message names the variable that sets the timeout.
    timeout_hint: ClassVar[bool] = True

    def __init__(
        self,
        config: HttpSourceConfig,
        *,
        on_exchange: ExchangeCallback | None = None,
        limiter: RateLimiter | None = None,
        secrets: Iterable[str | None] = (),
        session: BoundedSession | None = None,
        budget: CallBudget | None = None,
    ) -> None:
        self.config = config
        assert config.base_url is not None and config.calls_per_minute is not None
        self.base_url: str = config.base_url
        self.on_exchange = on_exchange
        self.limiter = limiter or shared_limiter(
            config.base_url, config.calls_per_minute, config.rate_window_seconds
        )
        secrets = [s for s in secrets if s]
        for secret in secrets:
            register_secret(secret)  # SourceError messages scrub it too, whoever builds them
        self._scrub = Scrubber(secrets)
        self._count_lock = threading.Lock()
        self.calls = 0
        self.budget = budget
        if session is not None and not isinstance(session, BoundedSession):
            raise TypeError("HttpClient needs a BoundedSession (deadline, body cap, redirects)")
        self.session = session if session is not None else BoundedSession()
        # Every attempt goes through the limiter and the count: no urllib3 retries underneath.
        self.session.mount("https://", BoundedAdapter(pool_maxsize=POOL_SIZE))
        self.session.mount("http://", BoundedAdapter(pool_maxsize=POOL_SIZE))
        self.session.headers["Accept"] = "application/json"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config!r})"

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the retrying GET ----------------------------------------------------------------
    def get(
        self,
        endpoint: str,
        params: Mapping[str, Any],
        *,
        send: Callable[[], requests.Response] | None = None,
        **context: Any,
    ) -> Any:
        """GET ``base_url + endpoint`` with ``params``, retried as the config says; the payload
        :meth:`interpret` returns. ``send`` replaces the plain ``session.get`` (a vendor library
        building the URL); ``context`` (e.g. the series id) is handed to :meth:`interpret`."""
        what = f"{self.vendor} {endpoint}"
        url = self.base_url + endpoint.lstrip("/")

        def plain_get() -> requests.Response:
            return self.session.get(url, params=params, timeout=self.config.timeout_seconds)

        def attempt() -> Any:
            with self._count_lock:
                self.calls += 1
            if self.budget is not None:
                self.budget.spend(what)
            try:
                response = (send or plain_get)()
            except DeadlineExceeded:
                raise UpstreamError(
                    f"{what} did not complete within its "
                    f"{self.session.limits.deadline_seconds:g} s deadline (connect and every "
                    f"read; raise {ENV_HTTP_DEADLINE} if the network is slow)",
                    endpoint=endpoint,
                    retryable=True,
                ) from None
            except RedirectRefused as exc:
                raise UpstreamError(
                    f"{what}: {self._scrub(str(exc))}; check {self.config.env.url}",
                    endpoint=endpoint,
                ) from None
            except BodyTooLarge as exc:
                raise UpstreamError(
                    f"{what}: answer refused, {self._scrub(str(exc))}",
                    endpoint=endpoint,
                ) from None
            except requests.Timeout:
                hint = (
                    f" (raise {self.config.env.timeout} if the network is slow)"
                    if self.timeout_hint
                    else ""
                )
                raise UpstreamError(
                    f"{what} timed out after {self.config.timeout_seconds:g} s{hint}",
                    endpoint=endpoint,
                    retryable=True,
                ) from None
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
                raise UpstreamError(
                    f"{what}: connection failed ({type(exc).__name__}: "
                    f"{one_line(self._scrub(str(exc)), 160)})",
                    endpoint=endpoint,
                    retryable=True,
                ) from None
            except requests.RequestException as exc:
                raise UpstreamError(
                    f"{what}: request failed ({type(exc).__name__}: "
                    f"{one_line(self._scrub(str(exc)), 160)})",
                    endpoint=endpoint,
                ) from None
            try:
                return self._answer(endpoint, params, response, context)
            except Exception as exc:
                # The boundary: whatever a vendor's interpret() built from the answer (its
                # error text, a key echoed in any encoding) is scrubbed before it goes on.
                raise self._scrub.exception(exc) from None

        return call_with_retries(
            attempt, policy=self.config.retry_policy, limiter=self.limiter, what=what
        )

    def _answer(
        self,
        endpoint: str,
        params: Mapping[str, Any],
        response: requests.Response,
        context: Mapping[str, Any],
    ) -> Any:
        status = response.status_code
        text = response.text
        # Scrub only what is logged, raised or stored; the data itself is parsed from the raw
        # text, so a key that happens to occur inside it (say, an id) cannot corrupt it.
        body = self._scrub(text)
        if self.on_exchange is not None:
            self.on_exchange(endpoint, self._scrub.params(params), status, body)
        what = f"{self.vendor} {endpoint}"
        html = looks_like_html(response.headers.get("content-type"), body)
        if status == 429:
            raise self.rate_limited(
                endpoint, status, parse_retry_after(response.headers.get("retry-after")), html
            )
        if html:
            raise HtmlResponseError(
                f"{what}: received HTML, likely a proxy or block page (HTTP {status}) instead of "
                f"JSON; check {self.config.env.url} and any HTTP proxy",
                endpoint=endpoint,
                status=status,
                retryable=status >= 500,
            )
        try:
            payload = json.loads(text)
        except ValueError:
            client_error = 400 <= status < 500
            if not (client_error and self.classify_text_client_errors):
                raise UpstreamError(
                    f"{what}: invalid or truncated JSON (HTTP {status}, {len(body)} characters: "
                    f"{one_line(body, 80)!r})",
                    endpoint=endpoint,
                    status=status,
                    retryable=not client_error,
                ) from None
            payload = None
        return self.interpret(endpoint, params, response, payload, **context)

    # -- what vendors override -----------------------------------------------------------
    def interpret(
        self,
        endpoint: str,
        params: Mapping[str, Any],
        response: requests.Response,
        payload: Any,
        **context: Any,
    ) -> Any:
        """The vendor's reading of one answer (any status but 429, JSON already decoded):
        return the payload or raise a typed error. The default refuses 4xx and 5xx."""
        status = response.status_code
        if status >= 500:
            raise UpstreamError(
                f"{self.vendor} {endpoint}: server error (HTTP {status})",
                endpoint=endpoint,
                status=status,
                retryable=True,
            )
        if status >= 400:
            raise UpstreamError(
                f"{self.vendor} {endpoint}: request refused (HTTP {status})",
                endpoint=endpoint,
                status=status,
            )
        return payload

    def rate_limited(
        self, endpoint: str, status: int, retry_after: float | None, html: bool
    ) -> RateLimitedError:
        """The error for a rate-limited answer (retried, pausing the whole limiter for any
        ``Retry-After``)."""
        what = f"{self.vendor} {endpoint}"
        if html:
            message = (
                f"{what}: rate limited (HTTP {status}, HTML page); lower "
                f"{self.config.env.calls_per_minute}"
            )
        else:
            after = "" if retry_after is None else f", Retry-After {retry_after:g} s"
            message = (
                f"{what}: rate limited (HTTP {status}{after}); lower "
                f"{self.config.env.calls_per_minute} (now {self.config.calls_per_minute:g})"
            )
        return RateLimitedError(message, endpoint=endpoint, status=status, retry_after=retry_after)

    def shape_error(self, endpoint: str, expected: str, body: Any) -> UpstreamError:
        """An "unexpected payload shape" error: what was expected and what came."""
        got = type(body).__name__ if not isinstance(body, dict) else f"keys {sorted(body)[:6]}"
        return UpstreamError(
            f"{self.vendor} {endpoint}: unexpected payload shape: expected {expected}, got {got}",
            endpoint=endpoint,
        )
