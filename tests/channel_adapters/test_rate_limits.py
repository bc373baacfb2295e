"""How long a platform asked us to wait: one reading of Retry-After and rate-limit resets for every adapter."""

from datetime import UTC, datetime
from email.utils import format_datetime

import pytest
import requests
from slack_sdk.errors import SlackApiError
from slack_sdk.web.slack_response import SlackResponse

from channel_adapters.base import RateLimited
from channel_adapters.rate_limits import DEFAULT_WAIT_SECONDS, MIN_WAIT_SECONDS, wait_seconds
from channel_adapters.slack import SlackAdapter
from channel_adapters.x import check_media_download

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "7"}, 7.0),
        ({"retry-after": "30"}, 30.0),  # any case, as a plain dict of headers has it
        ({"Retry-After": "1.5"}, 1.5),
        ({"Retry-After": format_datetime(datetime.fromtimestamp(NOW + 90, UTC), usegmt=True)}, 90.0),
        ({"x-rate-limit-reset": str(int(NOW) + 120)}, 120.0),
        ({"Retry-After": "5", "x-rate-limit-reset": str(int(NOW) + 120)}, 5.0),  # Retry-After wins
        ({"x-rate-limit-reset": str(int(NOW) - 30)}, MIN_WAIT_SECONDS),  # already passed (clock skew)
        ({}, DEFAULT_WAIT_SECONDS),
        ({"Retry-After": "soon"}, DEFAULT_WAIT_SECONDS),
        ({"Retry-After": "-3"}, DEFAULT_WAIT_SECONDS),
        ({"x-rate-limit-reset": "tomorrow"}, DEFAULT_WAIT_SECONDS),
        ({"x-rate-limit-reset": "9" * 40}, DEFAULT_WAIT_SECONDS),
    ],
)
def test_wait_seconds_reads_what_the_platform_said_or_falls_back(headers, expected):
    assert wait_seconds(headers, now=NOW) == pytest.approx(expected)


def test_a_malformed_retry_after_from_slack_is_a_rate_limit_not_a_crash():
    """Slack's client hands back the headers as they came: an odd value waits the default instead of raising."""
    response = SlackResponse(
        client=None,
        http_verb="POST",
        api_url="https://slack.com/api/chat.postMessage",
        req_args={},
        data={"ok": False, "error": "ratelimited"},
        headers={"Retry-After": "soon"},
        status_code=429,
    )
    error = SlackAdapter._translate(SlackApiError("ratelimited", response))
    assert isinstance(error, RateLimited)
    assert error.retry_after == DEFAULT_WAIT_SECONDS


def test_a_malformed_reset_on_an_x_media_download_is_a_rate_limit_not_a_crash():
    response = requests.Response()
    response.status_code = 429
    response.headers["x-rate-limit-reset"] = "not-a-number"
    with pytest.raises(RateLimited) as raised:
        check_media_download(response, dm=False)
    assert raised.value.retry_after == DEFAULT_WAIT_SECONDS
