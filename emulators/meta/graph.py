"""The Graph API router: ``/{version}/{id}`` and ``/{version}/{id}/{edge}`` for every product.

Order of checks, as Graph does: the token (104 missing, 190 unknown or revoked), the object and whether the
token may see it (100/33), an armed fault, usage (throttle codes 4, 613, 800xx), then the handler. Every
answer, errors included, carries the usage headers.
"""

import json
import math
import re
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import HTTP

from ..common import FaultQueues
from .errors import GraphError, invalid_token, no_such_object, revoked_token, throttled, unknown_path
from .graph_reads import GraphReads, Request
from .people import People
from .send_api import SendApi
from .store import Account, Store
from .usage import UsageMeter

VERSION_PATH = re.compile(r"^/v\d+\.\d+/(.*)$")
NODE_TYPES = {
    "page": "Page",
    "instagram": "IGUser",
    "whatsapp": "WhatsAppBusinessPhoneNumber",
    "waba": "WhatsAppBusinessAccount",
    "conversation": "UnifiedThread",
    "message": "Message",
    "post": "Post",
    "ig_media": "IGMedia",
    "comment": "Comment",
    "person": "User",
    "media_file": "WhatsAppBusinessMedia",
}


@dataclass(frozen=True)
class Route:
    endpoint: str  # the name usage budgets, faults and storms use
    handler: Callable[[Request, object], dict]
    product: str | None = None  # for a comment edge: which product's comments have it


@dataclass
class Fault:
    remaining: int
    status: int
    code: int
    message: str


class FaultPlan(FaultQueues):
    def arm(self, endpoint: str, count: int, status: int, code: int, message: str) -> None:
        if count < 1:
            raise ValueError("count must be at least 1")
        self._enqueue(endpoint, Fault(count, status, code, message))


ENDPOINTS = (
    "object",
    "conversations",
    "messages",
    "posts",
    "media_list",
    "comments",
    "send",
    "comment_reply",
    "whatsapp_send",
    "media_upload",
    "media",
    "media_download",
    "templates",
    "phone_numbers",
)


class GraphApi:
    def __init__(self, store: Store, reads: GraphReads, sends: SendApi, people: People, usage: UsageMeter):
        self.store = store
        self.reads = reads
        self.sends = sends
        self.people = people
        self.usage = usage
        self.faults = FaultPlan()
        self.revoked: dict[str, int] = {}  # token -> error subcode (460 revoked, 463 expired)
        obj = Route("object", lambda request, target: self.reads.object(request, request.kind, target))
        self.routes: dict[tuple[str, str, str | None], Route] = {
            **{
                ("GET", kind, None): obj
                for kind in (
                    "page",
                    "instagram",
                    "whatsapp",
                    "waba",
                    "conversation",
                    "message",
                    "post",
                    "ig_media",
                    "comment",
                    "person",
                )
            },
            ("GET", "media_file", None): Route("media", self._media_object),
            ("GET", "page", "conversations"): Route("conversations", self.reads.conversations),
            ("GET", "instagram", "conversations"): Route("conversations", self.reads.conversations),
            ("GET", "conversation", "messages"): Route("messages", self.reads.conversation_messages),
            ("GET", "page", "posts"): Route("posts", self.reads.posts),
            ("GET", "page", "feed"): Route("posts", self.reads.posts),
            ("GET", "page", "published_posts"): Route("posts", self.reads.posts),
            ("GET", "instagram", "media"): Route("media_list", self.reads.posts),
            ("GET", "post", "comments"): Route("comments", self.reads.comments),
            ("GET", "ig_media", "comments"): Route("comments", self.reads.comments),
            ("GET", "comment", "comments"): Route("comments", self.reads.comments, "messenger"),
            ("GET", "comment", "replies"): Route("comments", self.reads.comments, "instagram"),
            ("POST", "page", "messages"): Route("send", self.sends.dm),
            ("POST", "instagram", "messages"): Route("send", self.sends.dm),
            ("POST", "comment", "comments"): Route("comment_reply", self._reply, "messenger"),
            ("POST", "comment", "replies"): Route("comment_reply", self._reply, "instagram"),
            ("POST", "post", "comments"): Route("comment_reply", self._reply),
            ("POST", "whatsapp", "messages"): Route("whatsapp_send", self.sends.whatsapp),
            ("POST", "whatsapp", "media"): Route("media_upload", self.sends.upload_media),
            ("GET", "waba", "message_templates"): Route("templates", self.reads.templates),
            ("GET", "waba", "phone_numbers"): Route("phone_numbers", self.reads.phone_numbers),
        }

    def reset(self) -> None:
        self.faults.clear()
        self.revoked.clear()

    # -- resolution -----------------------------------------------------------------------------

    def resolve(self, verb: str, path: str) -> tuple[Route | None, str | None, object, str | None]:
        """(route, object kind, object, edge) of a Graph path; route None when nothing answers it."""
        match = VERSION_PATH.match(path)
        if not match:
            return None, None, None, None
        parts = [urllib.parse.unquote(part) for part in match.group(1).split("/") if part]
        if not 1 <= len(parts) <= 2:
            return None, None, None, None
        object_id, edge = parts[0], parts[1] if len(parts) == 2 else None
        kind, obj = self.store.objects.get(object_id, (None, None))
        if kind is None:
            return None, None, object_id, edge
        route = self.routes.get((verb, kind, edge))
        if route is not None and route.product and self.owners(kind, obj)[0].product != route.product:
            route = None  # a Facebook comment has no replies edge, an Instagram comment no comments edge
        return route, kind, obj, edge

    def owners(self, kind: str, obj) -> list[Account]:
        if kind in ("page", "instagram", "whatsapp"):
            return [obj]
        if kind == "waba":
            return self.store.waba_numbers(obj)
        if kind == "message":
            _, conversation = self.store.objects[obj.conversation_id]
            return [self.store.accounts[conversation.account_id]]
        return [self.store.accounts[obj.account_id]]

    def grants(self, account: Account, token: str) -> bool:
        if token == account.token:
            return True
        page = self.store.accounts.get(account.page_id or "") if account.kind == "instagram" else None
        return page is not None and token == page.token  # Instagram with Facebook Login uses the Page's token

    def endpoint(self, verb: str, path: str) -> str | None:
        if verb == "GET" and path.startswith("/whatsapp_business/attachments/"):
            return "media_download"
        with self.store.lock:
            route, *_ = self.resolve(verb, path)
        return route.endpoint if route else None

    # -- serving --------------------------------------------------------------------------------

    def handle(self, verb: str, path: str, params: dict, files: dict, token: str, base_url: str):
        """One Graph call: (HTTP status, JSON body, headers)."""
        with self.store.lock:
            account = None
            try:
                route, kind, obj, edge = self.resolve(verb, path)
                owners = self.owners(kind, obj) if kind else []
                account = owners[0] if owners else None
                self._authorize(token, owners, account)
                if kind is None:
                    raise no_such_object(str(obj), verb) if obj is not None else unknown_path(path)
                if route is None:
                    if edge is None:
                        raise no_such_object(str(obj.id if hasattr(obj, "id") else obj), verb)
                    raise GraphError(
                        400,
                        100,
                        f"(#100) Tried accessing nonexisting field ({edge}) on node type "
                        f"({NODE_TYPES.get(kind, kind)})",
                    )
                answer = self._serve(route, Request(verb, path, params, files, base_url, token, kind), obj, account)
            except GraphError as exc:
                headers = {**self.usage.peek(account), **exc.headers}
                return exc.status, exc.body(account.product if account else None), headers
        # Applied, then answered late or not at all; outside the lock, so other calls go on meanwhile.
        after_write = self.faults.take_after_write(route.endpoint) if verb == "POST" else None
        if after_write is not None:
            after_write.apply()
        return answer

    def _authorize(self, token: str, owners: list[Account], account: Account | None) -> None:
        product = account.product if account else None
        if not token:
            raise GraphError(400, 104, "An access token is required to request this resource.")
        if not any(token == a.token for a in self.store.accounts.values()):
            raise invalid_token(product)
        if token in self.revoked:
            if self.revoked[token] == 463:
                raise GraphError(
                    400 if product != "whatsapp" else 401,
                    190,
                    "Error validating access token: Session has expired.",
                    subcode=463,
                )
            raise revoked_token(product)
        if owners and not any(self.grants(owner, token) for owner in owners):
            raise GraphError(
                400,
                100,
                "(#100) Object does not exist, cannot be loaded due to missing permission "
                "or does not support this operation.",
                subcode=33,
            )

    def _serve(self, route: Route, request: Request, obj, account: Account | None):
        fault = self.faults.take(route.endpoint)
        if fault is not None:
            raise GraphError(fault.status, fault.code, fault.message, transient=fault.status >= 500 or None)
        code, regain, headers = self.usage.take(account, route.endpoint)
        if code is not None:
            raise throttled(code, retry_after=math.ceil(regain) if regain else None)
        body = route.handler(request, obj)
        return 200, body, headers

    # -- handlers needing the router ------------------------------------------------------------

    def _media_object(self, request: Request, file) -> dict:
        return self.reads.render.media_file(file, self.people.whatsapp_media_url(file.id))

    def _reply(self, request: Request, parent) -> dict:
        return self.sends.comment_reply(request, parent, "comment" if request.kind == "comment" else "post")

    def download(self, query: dict, token: str) -> tuple[int, bytes, str, dict]:
        """``GET /whatsapp_business/attachments/?mid=...``: the media bytes, for the owning number's token."""
        with self.store.lock:
            file = self.store.files.get(query.get("mid", ""))
            account = self.store.accounts.get(file.account_id) if file else None
            if file is None or account is None:
                return 404, b"Not Found", "text/plain", {}
            if not token or token in self.revoked or not self.grants(account, token):
                return 401, b"Unauthorized", "text/plain", {}
            fault = self.faults.take("media_download")
            if fault is not None:
                return (
                    fault.status,
                    json.dumps(GraphError(fault.status, fault.code, fault.message).body()).encode(),
                    "application/json",
                    {},
                )
            return 200, file.data, file.mime_type, {}

    def cdn_file(self, file_id: str, name: str) -> tuple[int, bytes, str, dict]:
        """A DM attachment URL (like Meta's signed CDN URLs: no token needed, and the whole URL must match)."""
        with self.store.lock:
            file = self.store.files.get(file_id)
            if file is None or name != (file.filename or "file"):
                return 404, b"Not Found", "text/plain", {}
            return 200, file.data, file.mime_type, {}


def parse_body(content_type: str, body: bytes) -> tuple[dict, dict]:
    """Graph parameters from a JSON, form-encoded or multipart body: (params, files)."""
    if not body:
        return {}, {}
    if content_type.startswith("application/json"):
        params = json.loads(body)
        if not isinstance(params, dict):
            raise ValueError("JSON body must be an object")
        return params, {}
    if content_type.startswith("multipart/form-data"):
        message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
        params, files = {}, {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            data = part.get_payload(decode=True) or b""
            if part.get_filename() is not None:
                files[name] = (part.get_filename(), part.get_content_type(), data)
            else:
                params[name] = data.decode()
        return params, files
    return dict(urllib.parse.parse_qsl(body.decode(), keep_blank_values=True)), {}
