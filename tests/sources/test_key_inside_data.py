"""A key that happens to occur inside the data is scrubbed from what is stored, never from the
data itself (regression: a one-letter key once turned 'render-token' into 'render-to***en')."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flows.sources import coingecko as cg
from tests.fakes.coingecko import FakeCoinGecko
from tests.fakes.fixtures import fast_coingecko_config


def test_key_substring_in_payload_does_not_corrupt_parsed_data():
    key = "token"  # occurs in 'render-token'
    stored: list[str] = []
    with FakeCoinGecko(n_coins=5, plan="pro", api_key=key) as fake:
        config = fast_coingecko_config(fake)
        client = cg.CoinGeckoClient(config, on_exchange=lambda e, p, s, body: stored.append(body))
        listed = cg.fetch_coin_list(client)
        end = datetime.now(UTC).date() - timedelta(days=1)
        history = cg.fetch_coin_history(client, "render-token", end - timedelta(days=10), end)
        client.close()
    assert "render-token" in set(listed["coin_id"])
    assert history.skipped is None and len(history.frame) == 11
    assert stored and all(key not in body for body in stored)
