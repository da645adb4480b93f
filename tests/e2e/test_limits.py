"""Rate limits on the running service (buckets in the real Redis): a burst beyond a key's rate gets 429 with
Retry-After for every excess request; other keys are unaffected."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.integration


def test_a_burst_beyond_a_keys_rate_is_refused_and_other_keys_go_on(service) -> None:
    with httpx.Client(base_url=service.url, timeout=60) as http:
        answers = [http.get("/v1/models", headers=service.headers(service.limited_key)) for _ in range(9)]
        assert [r.status_code for r in answers] == [200] * 5 + [429] * 4  # burst 5, then 1 a minute
        assert all(int(r.headers["retry-after"]) >= 1 for r in answers[5:])
        assert answers[0].headers["x-ratelimit-limit"] == "1" and answers[4].headers["x-ratelimit-remaining"] == "0"
        assert answers[5].json()["error"]["type"] == "rate_limit_error"
        assert http.get("/v1/models", headers=service.headers()).status_code == 200  # the admin key: no rate
