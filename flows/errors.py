"""Typed errors of the sources and settings (under the one root, :mod:`warehouse.errors`).

Only the CLI turns these into ``Error: ...`` lines and exit codes (2 for a
:class:`~warehouse.errors.UserInputError`, 1 otherwise). Every message is one line,
says what happened and how to fix it, and never contains an API key: messages are built from
the endpoint path, the HTTP status and the vendor's error text, and the key is sent in a header.
The vendor's text comes from outside and may echo the key (in any encoding), so every
:class:`SourceError` scrubs its message with :func:`flows.redact.scrub` when it is built: the
one boundary every source error passes, whoever builds it.
"""

from __future__ import annotations

from typing import Any

from flows.redact import scrub
from warehouse.error_root import AitokensError, UserInputError


class ConfigError(UserInputError, ValueError):
    """A setting (environment variable or argument) has an invalid value."""


class OptionError(UserInputError, ValueError):
    """A command-line option has an invalid value (``--window 5:1``): the user's input, not the
    warehouse's, so it is no :class:`warehouse.errors.WarehouseError`."""


class SourceError(AitokensError):
    """An upstream data source (CoinGecko, Yahoo) answered with something unusable.

    Parameters
    ----------
    message
        One line, without secrets.
    endpoint
        The path that was called, relative to the base URL (e.g. ``/coins/markets``).
    status
        HTTP status of the answer, ``None`` when there was no answer (timeout, refused).
    retryable
        Whether the same request may succeed if sent again later.
    retry_after
        Seconds the server asked us to wait (``Retry-After``), when it said so.
    """

    retryable_default = False

    def __init__(
        self,
        message: str,
        *,
        endpoint: str | None = None,
        status: int | None = None,
        retryable: bool | None = None,
        retry_after: float | None = None,
    ) -> None:
        message = scrub(message)
        super().__init__(message)
        self.message = message
        self.endpoint = endpoint
        self.status = status
        self.retryable = self.retryable_default if retryable is None else retryable
        self.retry_after = retry_after
        self.attempts = 1

    def __str__(self) -> str:
        return self.message

    def gave_up(self, attempts: int, seconds: float) -> SourceError:
        """Append how long we retried to the message and return ``self`` (for ``raise``)."""
        self.attempts = attempts
        self.message = scrub(
            f"{self.message} (gave up after {attempts} attempts in {seconds:.1f} s)"
        )
        self.args = (self.message,)
        return self


class RateLimitedError(SourceError):
    """The source kept answering HTTP 429 (too many requests) past the retry budget."""

    retryable_default = True


class UpstreamError(SourceError):
    """The source failed: 5xx, timeout, refused connection, invalid JSON or unexpected shape."""


class PlanLimitError(SourceError, UserInputError):
    """The request is outside what the API plan allows (CoinGecko 10012 history cap, 10005)."""


class NotFoundError(SourceError):
    """The requested series does not exist at the source (HTTP 404)."""


class CoinNotFoundError(NotFoundError):
    """CoinGecko does not know this coin id (delisted or renamed): skip it and record why."""

    def __init__(self, message: str, *, coin_id: str, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.coin_id = coin_id


class TickerNotFoundError(NotFoundError):
    """Yahoo has no chart for this ticker (delisted or misspelt): skip it and record why."""

    def __init__(self, message: str, *, ticker: str, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.ticker = ticker


class BadApiKeyError(SourceError, UserInputError):
    """The API key is missing, invalid or meant for another plan: stop and fix the variable."""


class HtmlResponseError(SourceError):
    """An HTML page came back instead of JSON: likely a proxy, captive portal or block page."""


class PayloadMismatchError(UpstreamError):
    """An answer about something else than what was asked (another coin or ticker, another
    currency, another time unit): refused with the reason, never stored under the request."""


class CallBudgetError(SourceError):
    """A run reached its cap on HTTP calls (``AITOKENS_MAX_CALLS_PER_RUN``): it stops instead
    of spending the API's quota on a server that never ends (e.g. pages without end)."""
