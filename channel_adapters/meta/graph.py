"""Meta's Graph API, as the Facebook Page, Instagram and WhatsApp adapters share it: calls, errors, paging,
throttling, webhook signatures and the subscription handshake.

Meta has no official Python SDK, so this is ``requests`` against a base URL per channel (default
``https://graph.facebook.com/v25.0``), which the emulator (``emulators.meta``) can stand in for.

Throttling: Meta answers a throttled call with an error code (4, 17, 32, 613, the business-use-case codes
80001-80014, WhatsApp's 130429/131048/131056), often with HTTP 400 rather than 429, and reports how close an
app is to its limits on every answer, in ``X-App-Usage`` and ``X-Business-Use-Case-Usage`` (JSON, percentages).
``Graph.usage_percent`` keeps the highest figure seen, so a poll stops before the limit rather than at it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime

import requests

from ..base import (
    CredentialsError,
    InvalidWebhook,
    OutcomeUnknown,
    PermanentError,
    RateLimited,
    TransientError,
    WebhookResult,
)
from ..http import may_have_arrived
from ..rate_limits import wait_seconds

DEFAULT_BASE_URL = "https://graph.facebook.com/v25.0"
DEFAULT_TIMEOUT_SECONDS = 15.0
#: Nothing on Meta's platforms is older than Facebook.
GRAPH_EPOCH = datetime(2004, 2, 1, tzinfo=UTC)
THROTTLE_CODES = frozenset({4, 17, 32, 613, 130429, 131048, 131056, *range(80001, 80015)})
#: Expired, revoked or invalid access tokens: an admin has to re-authorize the channel.
TOKEN_CODES = frozenset({102, 190, 463, 467})
#: At this share of any usage limit, polling stops until the usage falls.
USAGE_BACKOFF_PERCENT = 90.0
#: How long to wait when Meta throttles without saying for how long.
DEFAULT_THROTTLE_SECONDS = 300.0
SIGNATURE_HEADER = "X-Hub-Signature-256"


class MalformedPage(PermanentError):
    """A page of a paged edge without its ``data`` list; ``body`` is Meta's answer, for the failed row that keeps it."""

    def __init__(self, message: str, *, body: dict):
        super().__init__(message)
        self.body = body


class GraphError(PermanentError):
    """A refusal in Meta's words, with its ``code`` and ``subcode`` for the adapter to interpret."""

    def __init__(self, message: str, *, code: int | None, subcode: int | None, status: int):
        super().__init__(message)
        self.code = code
        self.subcode = subcode
        self.status = status


def describe_error(body: object, status: int) -> tuple[str, int | None, int | None]:
    """(Meta's message, code, subcode) from an error answer; the HTTP status when the body says nothing."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return f"HTTP {status}", None, None
    code = error.get("code") if isinstance(error.get("code"), int) else None
    subcode = error.get("error_subcode") if isinstance(error.get("error_subcode"), int) else None
    message = str(error.get("error_user_msg") or error.get("message") or f"HTTP {status}")
    details = error.get("error_data", {}).get("details") if isinstance(error.get("error_data"), dict) else None
    if details:
        message = f"{message}: {details}"
    return f"{message} (code {code}{f'/{subcode}' if subcode else ''})" if code else message, code, subcode


def usage_percent(headers: Mapping) -> tuple[float, float]:
    """(highest usage percentage, seconds until access is regained) from Meta's usage headers; (0, 0) without them."""
    highest, regain = 0.0, 0.0
    for name in ("X-App-Usage", "X-Ad-Account-Usage", "X-Business-Use-Case-Usage"):
        raw = headers.get(name)
        if not raw:
            continue
        try:
            data = json.loads(raw)
        except ValueError:
            continue
        groups = [data] if name != "X-Business-Use-Case-Usage" else [
            item for items in (data.values() if isinstance(data, dict) else []) if isinstance(items, list)
            for item in items
        ]  # fmt: skip
        for group in groups:
            if not isinstance(group, dict):
                continue
            for key in ("call_count", "total_cputime", "total_time", "acc_id_util_pct"):
                value = group.get(key)
                if isinstance(value, int | float):
                    highest = max(highest, float(value))
            minutes = group.get("estimated_time_to_regain_access")
            if isinstance(minutes, int | float):
                regain = max(regain, float(minutes) * 60)
    return highest, regain


def verify_signature(app_secret: str, headers: Mapping, body: bytes) -> None:
    """Refuse a push not signed by Meta with this app secret (HMAC-SHA256 of the raw body), before parsing it."""
    signature = headers.get(SIGNATURE_HEADER) or ""
    if not signature:
        raise InvalidWebhook(f"The request has no {SIGNATURE_HEADER} header.", status=401)
    expected = "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(signature.strip().lower(), expected):
        raise InvalidWebhook(f"The {SIGNATURE_HEADER} signature does not match the app secret.", status=403)


def answer_subscription(params: Mapping[str, str], verify_token: str) -> WebhookResult:
    """Meta's GET handshake: echo ``hub.challenge`` when the verify token is ours."""
    if params.get("hub.mode") != "subscribe" or not params.get("hub.challenge"):
        raise InvalidWebhook("Not a subscription request (hub.mode=subscribe and hub.challenge are needed).")
    if not verify_token or not hmac.compare_digest(params.get("hub.verify_token", ""), verify_token):
        raise InvalidWebhook("The verify token does not match this channel's.", status=403)
    return WebhookResult(body=params["hub.challenge"])


def parse_unix_time(value: object, *, milliseconds: bool = False) -> datetime:
    """A Graph timestamp (seconds, or milliseconds for Messenger's webhooks; int or digit string) as UTC."""
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit():
        raise ValueError(f"not a timestamp: {value!r}")
    seconds = int(value) / 1000 if milliseconds else int(value)
    return datetime.fromtimestamp(seconds, UTC)


def parse_iso_time(value: object) -> datetime:
    """A Graph ISO time (``2024-05-01T10:00:00+0000``) as UTC."""
    if not isinstance(value, str):
        raise ValueError(f"not a time: {value!r}")
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S%z").astimezone(UTC)


class Graph:
    """Calls to one Graph API base URL with one access token. ``usage`` is the highest usage percentage seen."""

    def __init__(self, *, base_url: str, token: str, timeout: float = DEFAULT_TIMEOUT_SECONDS, product: str = "Meta"):
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.product = product
        self.usage = 0.0
        self.regain_seconds = 0.0
        self.session = requests.Session()

    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else f"{self.base_url}/{path.lstrip('/')}"

    def get(self, path: str, params: Mapping | None = None) -> dict:
        return self._call("GET", path, params=params)

    def post(self, path: str, *, json_body: Mapping | None = None, data=None, files=None, write: bool = True) -> dict:
        """A POST; ``write`` ones whose request may have reached Meta without an answer are ``OutcomeUnknown``."""
        return self._call("POST", path, json_body=json_body, data=data, files=files, write=write)

    def pages(self, path: str, params: Mapping | None = None, *, max_pages: int = 100) -> Iterator[list[dict]]:
        """Each page's ``data`` of a paged edge, following ``paging.next`` (cursor-based and time-based paging)."""
        url: str | None = path
        query: Mapping | None = params
        for _ in range(max_pages):
            body = self._call("GET", url, params=query)
            data = body.get("data")
            if not isinstance(data, list):
                raise MalformedPage(f"{self.product} answered {path} without a data list.", body=body)
            yield data
            paging = body.get("paging") if isinstance(body.get("paging"), dict) else {}
            url, query = paging.get("next") if isinstance(paging.get("next"), str) else None, None
            if not url or not data:
                return

    def stream(self, url: str) -> requests.Response:
        """A streamed GET of a file: with the token only on the Graph host itself (Meta's CDN URLs are signed)."""
        headers = {"Authorization": f"Bearer {self.token}"} if self._is_own_host(url) else {}
        try:
            response = self.session.get(url, headers=headers, stream=True, timeout=self.timeout)
        except requests.RequestException as exc:
            raise TransientError(f"{self.product} file unreachable: {type(exc).__name__}") from None
        if response.status_code >= 400:
            response.close()
            if response.status_code >= 500:
                raise TransientError(f"{self.product} file: HTTP {response.status_code}")
            raise PermanentError(f"{self.product} file: HTTP {response.status_code}")
        return response

    def _is_own_host(self, url: str) -> bool:
        own = requests.utils.urlparse(self.base_url)
        other = requests.utils.urlparse(url)
        return (other.scheme, other.netloc) == (own.scheme, own.netloc) or other.netloc.endswith(
            ("graph.facebook.com", "lookaside.fbsbx.com")
        )

    def _call(self, method, path, *, params=None, json_body=None, data=None, files=None, write=False) -> dict:
        try:
            response = self.session.request(
                method,
                self.url(path),
                params=params,
                json=json_body,
                data=data,
                files=files,
                headers={"Authorization": f"Bearer {self.token}"},
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            if write and may_have_arrived(exc):
                raise OutcomeUnknown(
                    f"{self.product} did not answer {method} {_path(path)} ({type(exc).__name__})"
                ) from None
            raise TransientError(f"{self.product} unreachable: {type(exc).__name__}") from None
        usage, regain = usage_percent(response.headers)
        self.usage, self.regain_seconds = max(self.usage, usage), max(self.regain_seconds, regain)
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code < 400 and isinstance(body, dict):
            return body
        message, code, subcode = describe_error(body, response.status_code)
        words = f"{self.product}: {message}"
        if response.status_code == 429 or code in THROTTLE_CODES:
            retry_after = max(regain, wait_seconds(response.headers, default=DEFAULT_THROTTLE_SECONDS))
            raise RateLimited(f"{words}; waiting {retry_after:.0f}s", retry_after=retry_after)
        if code in TOKEN_CODES or response.status_code == 401:
            raise CredentialsError(f"{words}; re-authorize needed")
        error = body.get("error") if isinstance(body, dict) else None
        if response.status_code >= 500 or (isinstance(error, dict) and error.get("is_transient") is True):
            if write and response.status_code == 504:
                raise OutcomeUnknown(words)
            raise TransientError(words)
        if response.status_code < 400:
            raise TransientError(f"{self.product} answered {_path(path)} with something that is not JSON")
        raise GraphError(words, code=code, subcode=subcode, status=response.status_code)


def _path(path: str) -> str:
    """A path fit for a message: no query string (it may carry a token)."""
    return requests.utils.urlparse(path).path.rsplit("/", 2)[-1] if "://" in path else path.split("?")[0]
