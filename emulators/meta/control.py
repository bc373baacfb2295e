"""Control API under /_emulator/: JSON endpoints that tests and demos use to set up accounts, play the people
who write to them, read what the business sent, and break things. No auth. Errors are HTTP 4xx with
{"error": "..."}.
"""

import base64
import binascii
from collections.abc import Callable

from ..common import AfterWrite, CallCounter, ControlError, ControlRoutes, required_field
from .errors import server_error
from .graph import ENDPOINTS, GraphApi
from .people import People, PersonError
from .send_api import Receipts
from .store import Account, Store, Template
from .usage import UsageMeter
from .webhooks import WebhookPusher

DEFAULT_APP_SECRET = "meta-app-secret"
DEFAULT_VERIFY_TOKEN = "meta-verify-token"


def _optional(payload: dict, name: str) -> str | None:
    return required_field(payload, name) if payload.get(name) not in (None, "") else None


def _base64(value, name: str) -> bytes:
    if not isinstance(value, str):
        raise ControlError(f"{name} is required (base64)")
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error:
        raise ControlError(f"{name} is not base64") from None


def _at(payload: dict) -> float | None:
    return float(payload["at"]) if payload.get("at") is not None else None


class ControlApi(ControlRoutes):
    platform_errors = (PersonError, KeyError)

    def __init__(
        self,
        store: Store,
        people: People,
        pusher: WebhookPusher,
        receipts: Receipts,
        graph: GraphApi,
        usage: UsageMeter,
        stats: CallCounter,
        reset: Callable[[], None],
    ):
        super().__init__(reset)
        self.store = store
        self.people = people
        self.pusher = pusher
        self.receipts = receipts
        self.graph = graph
        self.usage = usage
        self.stats = stats
        self._routes = {
            ("POST", "reset"): self.reset,
            ("POST", "accounts/page"): self.add_page,
            ("POST", "accounts/instagram"): self.add_instagram,
            ("POST", "accounts/whatsapp"): self.add_whatsapp,
            ("GET", "accounts"): self.list_accounts,
            ("POST", "webhook"): self.set_webhook,
            ("POST", "dms"): self.dm,
            ("POST", "dms/edit"): lambda p: self.people.edit_dm(
                required_field(p, "account_id"), required_field(p, "mid"), required_field(p, "text")
            ),
            ("POST", "dms/unsend"): lambda p: self.people.unsend_dm(
                required_field(p, "account_id"), required_field(p, "mid")
            ),
            ("POST", "dms/react"): self.react,
            ("POST", "posts"): lambda p: self.people.add_post(
                required_field(p, "account_id"), str(p.get("text") or ""), _at(p)
            ),
            ("POST", "comments"): self.comment,
            ("POST", "comments/edit"): lambda p: self.people.edit_comment(
                required_field(p, "account_id"), required_field(p, "comment_id"), required_field(p, "text")
            ),
            ("POST", "comments/remove"): lambda p: self.people.remove_comment(
                required_field(p, "account_id"), required_field(p, "comment_id")
            ),
            ("POST", "whatsapp"): self.whatsapp,
            ("POST", "whatsapp/react"): lambda p: self.people.whatsapp_react(
                required_field(p, "account_id"),
                required_field(p, "wa_id"),
                required_field(p, "wamid"),
                str(p.get("emoji", "👍")),
            ),
            ("POST", "whatsapp/edit"): lambda p: self.people.whatsapp_edit(
                required_field(p, "account_id"),
                required_field(p, "wa_id"),
                required_field(p, "wamid"),
                required_field(p, "text"),
            ),
            ("POST", "whatsapp/revoke"): lambda p: self.people.whatsapp_revoke(
                required_field(p, "account_id"), required_field(p, "wa_id"), required_field(p, "wamid")
            ),
            ("POST", "whatsapp/fail"): self.fail_whatsapp,
            ("POST", "templates"): self.add_template,
            ("GET", "sent"): self.list_sent,
            ("GET", "webhooks"): lambda p: self.pusher.snapshot(p.get("account_id") or None),
            ("POST", "webhooks/push"): self.push_raw,
            ("POST", "webhooks/drop"): lambda p: {"drop_next": self.pusher.drop_next(int(p.get("count", 1)))},
            ("POST", "webhooks/wait"): self.wait_webhooks,
            ("POST", "webhooks/config"): lambda p: self.pusher.configure(p.get("retry_delays"), p.get("timeout")),
            ("POST", "receipts"): self.set_receipts,
            ("POST", "tokens"): self.set_token,
            ("POST", "usage/budget"): self.set_budget,
            ("POST", "usage"): self.set_usage,
            ("GET", "usage"): lambda p: self.usage.snapshot(),
            ("POST", "faults"): self.arm_fault,
            ("POST", "faults/after_write"): self.arm_after_write,
            ("DELETE", "faults"): self.clear_faults,
            ("GET", "stats"): lambda p: {**self.stats.snapshot(), "usage": self.usage.snapshot()},
        }

    def handle(self, verb: str, route: str, query: dict, payload) -> tuple[int, dict]:
        # People's actions and the Graph share the store; one lock keeps them apart.
        with self.store.lock:
            return super().handle(verb, route, query, payload)

    def platform_error(self, exc: Exception) -> tuple[int, dict]:
        if isinstance(exc, PersonError):
            return exc.status, {"error": str(exc)}
        return 404, {"error": str(exc.args[0]) if exc.args else "not found"}

    # -- accounts -------------------------------------------------------------------------------

    def _account(self, kind: str, payload: dict, **extra) -> Account:
        account_id = _optional(payload, "id") or self.store.new_number()
        if account_id in self.store.accounts:
            raise ControlError(f"account {account_id} exists")
        account = Account(
            kind=kind,
            id=account_id,
            name=str(payload.get("name") or "IT Help"),
            token=str(payload.get("token") or extra.pop("token", None) or f"{kind}-token-{account_id}"),
            app_secret=str(payload.get("app_secret") or extra.pop("app_secret", None) or DEFAULT_APP_SECRET),
            verify_token=str(payload.get("verify_token") or DEFAULT_VERIFY_TOKEN),
            human_agent=bool(payload.get("human_agent", True)),
            **extra,
        )
        return self.store.add_account(account)

    def _with_webhook(self, account: Account, payload: dict) -> dict:
        answer = account.render()
        if payload.get("webhook_url"):
            answer["handshake"] = self._subscribe(account, payload["webhook_url"], bool(payload.get("handshake", True)))
            answer["webhook_url"] = account.webhook_url
        return answer

    def add_page(self, payload: dict) -> dict:
        return self._with_webhook(self._account("page", payload), payload)

    def add_instagram(self, payload: dict) -> dict:
        page = self.store.account(required_field(payload, "page_id"), "page")
        account = self._account(
            "instagram",
            payload,
            page_id=page.id,
            username=str(payload.get("username") or "ithelp"),
            token=page.token,
            app_secret=page.app_secret,
        )
        return self._with_webhook(account, payload)

    def add_whatsapp(self, payload: dict) -> dict:
        account = self._account(
            "whatsapp",
            payload,
            waba_id=_optional(payload, "waba_id") or self.store.new_number(),
            display_phone_number=str(payload.get("display_phone_number") or "15550001234"),
        )
        return self._with_webhook(account, payload)

    def list_accounts(self, payload: dict) -> dict:
        return {"accounts": [account.render() for account in self.store.accounts.values()]}

    def set_webhook(self, payload: dict) -> dict:
        account = self.store.account(required_field(payload, "account_id"))
        url = payload.get("url") or None
        if url is None:
            account.webhook_url = None
            return {"url": None}
        handshake = self._subscribe(account, url, bool(payload.get("handshake", True)))
        return {"url": account.webhook_url, "handshake": handshake}

    def _subscribe(self, account: Account, url: str, handshake: bool) -> dict | None:
        """Register a callback URL; as in the App Dashboard, only once it has answered the GET handshake."""
        if not handshake:
            account.webhook_url = url
            return None
        # The helpdesk may call back into the emulator while it answers: do not hold the store's lock.
        self.store.lock.release()
        try:
            result = self.pusher.handshake(url, account.verify_token)
        finally:
            self.store.lock.acquire()
        if result["passed"]:
            account.webhook_url = url
        return result

    # -- people ---------------------------------------------------------------------------------

    def dm(self, payload: dict) -> dict:
        attachments = []
        for item in payload.get("attachments") or []:
            if not isinstance(item, dict):
                raise ControlError("attachments must be objects")
            attachments.append({**item, "content": _base64(item.get("content_base64"), "content_base64")})
        return self.people.dm(
            required_field(payload, "account_id"),
            str(payload.get("text") or ""),
            _optional(payload, "sender_id"),
            payload.get("name"),
            payload.get("username"),
            attachments,
            _at(payload),
        )

    def react(self, payload: dict) -> dict:
        return self.people.react(
            required_field(payload, "account_id"),
            required_field(payload, "mid"),
            required_field(payload, "sender_id"),
            str(payload.get("emoji") or "❤️"),
            bool(payload.get("remove")),
        )

    def comment(self, payload: dict) -> dict:
        return self.people.comment(
            required_field(payload, "account_id"),
            required_field(payload, "post_id"),
            required_field(payload, "text"),
            _optional(payload, "sender_id"),
            payload.get("name"),
            payload.get("username"),
            _optional(payload, "parent_id"),
            _at(payload),
        )

    def whatsapp(self, payload: dict) -> dict:
        content = payload.get("content_base64")
        return self.people.whatsapp(
            required_field(payload, "account_id"),
            wa_id=_optional(payload, "wa_id"),
            name=payload.get("name"),
            type=str(payload.get("type") or "text"),
            text=str(payload.get("text") or ""),
            content=_base64(content, "content_base64") if content is not None else None,
            mime_type=payload.get("mime_type"),
            filename=payload.get("filename"),
            caption=payload.get("caption"),
            voice=bool(payload.get("voice")),
            reply_to=_optional(payload, "reply_to"),
            at=_at(payload),
        )

    def fail_whatsapp(self, payload: dict) -> dict:
        account = self.store.account(required_field(payload, "account_id"), "whatsapp")
        self.receipts.fail_next(account.id, int(payload.get("code", 131026)), int(payload.get("count", 1)))
        return {}

    def add_template(self, payload: dict) -> dict:
        template = Template(
            id=self.store.new_number(),
            waba_id=required_field(payload, "waba_id"),
            name=required_field(payload, "name"),
            language=str(payload.get("language") or "en_US"),
            category=str(payload.get("category") or "UTILITY"),
            body=required_field(payload, "body"),
            status=str(payload.get("status") or "APPROVED"),
        )
        self.store.templates.append(template)
        return template.render()

    # -- reading and steering -------------------------------------------------------------------

    def list_sent(self, payload: dict) -> dict:
        account_id = payload.get("account_id")
        return {"sent": [dict(item) for item in self.store.sent if not account_id or item["account_id"] == account_id]}

    def push_raw(self, payload: dict) -> dict:
        """Push any body to an account's URL, signed and retried like the others (events no control makes)."""
        account = self.store.account(required_field(payload, "account_id"))
        return {"push_id": self.pusher.publish(account.id, required_field(payload, "body", dict))}

    def wait_webhooks(self, payload: dict) -> dict:
        timeout = float(payload.get("timeout", 10))
        self.store.lock.release()  # pushes being answered may call the Graph meanwhile
        try:
            return {"idle": self.pusher.wait_idle(timeout)}
        finally:
            self.store.lock.acquire()

    def set_receipts(self, payload: dict) -> dict:
        names = ("enabled", "sent_delay", "delivered_delay", "read_delay")
        return self.receipts.configure(**{name: payload.get(name) for name in names})

    def set_token(self, payload: dict) -> dict:
        token = required_field(payload, "token")
        if payload.get("revoked", True):
            self.graph.revoked[token] = 463 if payload.get("expired") else 460
        else:
            self.graph.revoked.pop(token, None)
        return {"revoked": sorted(self.graph.revoked)}

    def set_budget(self, payload: dict) -> dict:
        self.usage.set_budget(
            required_field(payload, "scope"),
            int(required_field(payload, "calls", int)),
            float(payload.get("window_seconds", 3600)),
        )
        return self.usage.snapshot()

    def set_usage(self, payload: dict) -> dict:
        percent = payload.get("percent")
        self.usage.set_usage(
            required_field(payload, "scope"),
            int(percent) if percent is not None else None,
            int(payload.get("regain_minutes", 0)),
        )
        return self.usage.snapshot()

    def _endpoint(self, payload: dict) -> str:
        endpoint = required_field(payload, "endpoint")
        if endpoint not in ENDPOINTS:
            raise ControlError(f"unknown endpoint {endpoint!r}; one of {list(ENDPOINTS)}")
        return endpoint

    def arm_fault(self, payload: dict) -> dict:
        status = int(payload.get("status", 500))
        default = server_error(status)
        self.graph.faults.arm(
            self._endpoint(payload),
            int(payload.get("count", 1)),
            status,
            int(payload.get("code", default.code)),
            str(payload.get("message") or default.message),
        )
        return {}

    def arm_after_write(self, payload: dict) -> dict:
        self.graph.faults.arm_after_write(self._endpoint(payload), AfterWrite.build(payload))
        return {}

    def clear_faults(self, payload: dict) -> dict:
        self.graph.faults.clear()
        return {}
