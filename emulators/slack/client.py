"""Python client for the emulator's control API, for an emulator in this process or elsewhere."""

import base64
from collections.abc import Iterable

from ..common import ControlClient, EmulatorControlError

__all__ = ["EmulatorControlError", "SlackEmulatorClient"]


class SlackEmulatorClient(ControlClient):
    @property
    def base_url(self) -> str:
        """What to pass to slack_sdk.WebClient(base_url=...)."""
        return f"{self.url}/api/"

    def reset(self) -> None:
        """Back to the seeds: the bot user, C0GENERAL, the bot token, the start-up configuration."""
        self._call("POST", "reset")

    def add_user(
        self, user_id: str, name: str | None = None, real_name: str = "", email: str | None = None, is_bot: bool = False
    ) -> dict:
        payload = {"id": user_id, "name": name, "real_name": real_name, "email": email, "is_bot": is_bot}
        return self._call("POST", "users", payload)

    def add_conversation(self, channel: str, name: str | None = None) -> dict:
        return self._call("POST", "conversations", {"id": channel, "name": name})

    def post(
        self,
        channel: str,
        user: str,
        text: str,
        thread_ts: str | None = None,
        reply_broadcast: bool = False,
        files: Iterable[dict] = (),
    ) -> dict:
        """A human posts; returns {"ts", "event_id", "files"} (event_id None without an events_url).

        ``files``: [{"name", "content" (bytes), "mimetype"?}], shared with the message as Slack does.
        """
        payload = {
            "channel": channel,
            "user": user,
            "text": text,
            "thread_ts": thread_ts,
            "reply_broadcast": reply_broadcast,
            "files": [
                {
                    "name": f["name"],
                    "mimetype": f.get("mimetype"),
                    "content_base64": base64.b64encode(f["content"]).decode(),
                }
                for f in files
            ],
        }
        return self._call("POST", "messages", payload)

    def post_many(self, channel: str, messages: Iterable[dict], dispatch_events: bool = False) -> list[str]:
        """Store many {"user", "text", "thread_ts"?} messages in one call; returns their ts."""
        payload = {"channel": channel, "messages": list(messages), "dispatch_events": dispatch_events}
        return self._call("POST", "messages/bulk", payload)["ts"]

    def edit(self, channel: str, ts: str, text: str) -> dict:
        return self._call("POST", "messages/edit", {"channel": channel, "ts": ts, "text": text})

    def delete(self, channel: str, ts: str) -> dict:
        return self._call("POST", "messages/delete", {"channel": channel, "ts": ts})

    def messages(self, channel: str) -> list[dict]:
        """Every message in the conversation, thread replies included, oldest first."""
        return self._call("GET", "messages", query={"channel": channel})["messages"]

    def bot_messages(self, channel: str) -> list[dict]:
        """What the app posted with chat.postMessage, oldest first."""
        return self._call("GET", "bot_messages", query={"channel": channel})["messages"]

    def fault(
        self,
        method: str,
        count: int | None = None,
        status: int | None = None,
        error: str | None = None,
        retry_after: int | None = None,
        latency: float | None = None,
    ) -> None:
        """Make the next `count` calls of a Web API method fail, and/or slow every call down.

        status=429 answers ratelimited with Retry-After; error="..." answers
        HTTP 200 ok:false; status=500/503 answers an HTTP error.
        """
        payload = {
            "method": method,
            "count": count,
            "status": status,
            "error": error,
            "retry_after": retry_after,
            "latency": latency,
        }
        self._call("POST", "faults", {key: value for key, value in payload.items() if value is not None})

    def fault_after_write(self, method: str, delay: float = 0, reset: bool = False, count: int = 1) -> None:
        """Let the next `count` calls of a method do their work (a post is stored), then answer `delay`
        seconds late, or reset the connection instead of answering (`reset`)."""
        self._call("POST", "faults/after_write", {"method": method, "delay": delay, "reset": reset, "count": count})

    def clear_faults(self) -> None:
        self._call("DELETE", "faults")

    def set_token(self, token: str, revoked: bool = False) -> None:
        self._call("POST", "tokens", {"token": token, "revoked": revoked})

    def configure(
        self,
        events_url: str | None = None,
        signing_secret: str | None = None,
        event_retry_delays: Iterable[float] | None = None,
        event_timeout: float | None = None,
    ) -> dict:
        """Change event delivery settings (events_url="" turns delivery off); returns them all."""
        payload = {
            "events_url": events_url,
            "signing_secret": signing_secret,
            "event_retry_delays": list(event_retry_delays) if event_retry_delays is not None else None,
            "event_timeout": event_timeout,
        }
        return self._call("POST", "config", {key: value for key, value in payload.items() if value is not None})

    def stats(self) -> dict:
        """{"calls", "max_inflight", "event_deliveries", "events_pending"}."""
        return self._call("GET", "stats")

    def redeliver(self, event_id: str) -> dict:
        return self._call("POST", "events/redeliver", {"event_id": event_id})

    def url_verification(self) -> dict:
        return self._call("POST", "events/url_verification")

    def wait_for_events(self, timeout: float = 10.0) -> bool:
        """Block until every queued event has been delivered or given up on."""
        return self._call("POST", "events/wait", {"timeout": timeout}, timeout=timeout + self.timeout)["idle"]
