"""The one client base (flows/sources/http_client.py) on its own: a minimal vendor against the
fake server base, so what every vendor inherits is pinned once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import pytest

from flows.errors import ConfigError, HtmlResponseError, RateLimitedError, UpstreamError
from flows.sources.http_client import HttpClient, HttpEnv, HttpSourceConfig
from tests.fakes.fixtures import FAST
from tests.fakes.server import FakeServer, Reply


@dataclass(frozen=True)
class EchoConfig(HttpSourceConfig):
    env: ClassVar[HttpEnv] = HttpEnv("ECHO_URL", "ECHO_CPM", "ECHO_TIMEOUT", "ECHO_MAX_RETRY")

    def __post_init__(self) -> None:
        self.check_http_settings()


class EchoClient(HttpClient):
    vendor = "Echo"


class FakeEcho(FakeServer):
    def route(self, path: str, params: dict[str, str], headers: dict[str, str], transform: Any):
        if path == "/secret":
            return Reply(200, {"echo": headers.get("x-key", "")})
        return Reply(200, {"path": path, **params})


@pytest.fixture
def echo():
    with FakeEcho() as fake:
        yield fake


def client_for(fake: FakeServer, **overrides: Any) -> EchoClient:
    config = EchoConfig(**{"base_url": fake.url, "calls_per_minute": 60_000.0, **FAST, **overrides})
    return EchoClient(config)


def test_get_returns_the_payload_and_counts_calls(echo):
    with client_for(echo) as client:
        assert client.get("/a/b", {"x": 1}) == {"path": "/a/b", "x": "1"}
    assert client.calls == 1 and len(echo.calls("/a/b")) == 1


def test_settings_are_checked_naming_the_variable(echo):
    with pytest.raises(ConfigError, match="ECHO_TIMEOUT must be a positive number"):
        client_for(echo, timeout_seconds=0)
    with pytest.raises(ConfigError, match="ECHO_MAX_RETRY must be zero or more"):
        client_for(echo, max_retry_seconds=-1)
    assert EchoConfig(base_url="https://h", calls_per_minute=1).base_url == "https://h/"
    assert EchoConfig(base_url="http://localhost:8", calls_per_minute=1).base_url.endswith("/")
    # a key over plain http can be read on the way: https, except for the local host
    with pytest.raises(ConfigError, match="ECHO_URL='http://h/' uses plain http"):
        EchoConfig(base_url="http://h", calls_per_minute=1)
    with pytest.raises(ConfigError, match="not an http"):
        EchoConfig(base_url="file:///etc/passwd", calls_per_minute=1)
    env = {"ECHO_URL": "http://x", "ECHO_CPM": "12", "ECHO_TIMEOUT": "", "ECHO_MAX_RETRY": "3"}
    assert EchoConfig.settings_from_env(env) == {
        "base_url": "http://x",
        "calls_per_minute": 12.0,
        "max_retry_seconds": 3.0,
    }


def test_429_is_retried_with_retry_after(echo):
    echo.inject("/a", status=429, retry_after=0.05, times=2)
    with client_for(echo) as client:
        client.get("/a", {})
    assert [r.status for r in echo.calls("/a")] == [429, 429, 200]


def test_persistent_429_names_the_rate_setting(echo):
    echo.inject("/a", status=429, retry_after=5, times=None)
    with client_for(echo) as client, pytest.raises(RateLimitedError) as info:
        client.get("/a", {})
    assert "Echo /a: rate limited (HTTP 429, Retry-After 5 s); lower ECHO_CPM" in str(info.value)


def test_html_is_an_error_without_retry(echo):
    echo.inject("/a", "html")
    with client_for(echo) as client, pytest.raises(HtmlResponseError, match="check ECHO_URL"):
        client.get("/a", {})
    assert len(echo.calls("/a")) == 1


def test_timeout_names_the_setting_unless_the_vendor_says_not(echo):
    echo.inject("/a", "timeout", delay=1.0, times=None)
    client = client_for(echo, timeout_seconds=0.2, max_retry_seconds=0)
    with client, pytest.raises(UpstreamError, match=r"timed out after 0.2 s \(raise ECHO_TIMEOUT"):
        client.get("/a", {})


def test_text_4xx_is_invalid_json_unless_the_vendor_classifies_it(echo):
    echo.inject("/a", "body", status=403, body="Forbidden", content_type="text/plain", times=2)
    with client_for(echo) as client, pytest.raises(UpstreamError, match="invalid or truncated"):
        client.get("/a", {})

    class Lenient(EchoClient):
        classify_text_client_errors = True

    lenient = Lenient(client_for(echo).config)
    with lenient, pytest.raises(UpstreamError, match=r"request refused \(HTTP 403\)"):
        lenient.get("/a", {})


def test_secrets_are_scrubbed_from_reports_and_key_params_dropped(echo):
    seen: list[tuple[str, dict, int, str]] = []
    config = client_for(echo).config
    client = EchoClient(
        config, on_exchange=lambda e, p, s, b: seen.append((e, dict(p), s, b)), secrets=["s3cr3t"]
    )
    client.session.headers["x-key"] = "s3cr3t"
    with client:
        assert client.get("/secret", {"api_key": "s3cr3t", "q": "1"}) == {"echo": "s3cr3t"}
    assert seen == [("/secret", {"q": "1"}, 200, '{"echo":"***"}')]


def test_hidden_retries_are_off():
    with FakeEcho() as fake, client_for(fake) as client:
        assert client.session.get_adapter("https://example.org/").max_retries.total == 0
