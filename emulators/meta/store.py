"""The emulated Meta world: the business accounts, the people who write to them, what everyone wrote.

One store for the three products. Every Graph object has an id in ``objects`` (id -> (kind, object)), so
``GET /{id}`` and ``/{id}/{edge}`` find it whatever it is. The store holds no protocol logic: ``people.py``
(what simulated people do), ``send_api.py`` (what the business sends) and ``graph_reads.py`` (reads) do.
Callers hold ``store.lock`` while they read or change it.
"""

import base64
import hashlib
import itertools
import random
import secrets
import threading
import time
from dataclasses import dataclass, field

HOUR = 3600.0
DAY = 24 * HOUR
STANDARD_WINDOW = DAY  # Messenger, Instagram and WhatsApp: free-form replies within 24 h of the person's message
HUMAN_AGENT_WINDOW = 7 * DAY  # Messenger/Instagram HUMAN_AGENT tag; also the age limit of a private reply

KINDS = ("page", "instagram", "whatsapp")
WEBHOOK_OBJECTS = {"page": "page", "instagram": "instagram", "whatsapp": "whatsapp_business_account"}
PRODUCTS = {"page": "messenger", "instagram": "instagram", "whatsapp": "whatsapp"}


def now() -> float:
    return time.time()


def iso(timestamp: float) -> str:
    """Graph's time format: ``2021-07-23T09:50:48+0000``."""
    return time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime(timestamp))


def millis(timestamp: float) -> int:
    return int(timestamp * 1000)


@dataclass
class Account:
    """A Facebook Page, an Instagram professional account (linked to a Page), or a WhatsApp number."""

    kind: str  # one of KINDS
    id: str
    name: str
    token: str
    app_secret: str
    verify_token: str
    webhook_url: str | None = None
    username: str = ""  # instagram
    page_id: str | None = None  # instagram: the linked Page (Send API and conversations go through it)
    human_agent: bool = True  # page/instagram: the app has the Human Agent permission
    display_phone_number: str = ""  # whatsapp
    waba_id: str | None = None  # whatsapp

    @property
    def webhook_object(self) -> str:
        return WEBHOOK_OBJECTS[self.kind]

    @property
    def product(self) -> str:
        return PRODUCTS[self.kind]

    def render(self) -> dict:
        data = {
            "kind": self.kind,
            "id": self.id,
            "name": self.name,
            "token": self.token,
            "app_secret": self.app_secret,
            "verify_token": self.verify_token,
            "webhook_url": self.webhook_url,
        }
        if self.kind == "instagram":
            data.update(username=self.username, page_id=self.page_id, human_agent=self.human_agent)
        elif self.kind == "page":
            data["human_agent"] = self.human_agent
        else:
            data.update(display_phone_number=self.display_phone_number, waba_id=self.waba_id)
        return data


@dataclass
class Person:
    """Someone writing to an account: a PSID (Messenger), an IGSID (Instagram) or a wa_id (WhatsApp)."""

    id: str
    account_id: str
    name: str
    username: str = ""


@dataclass
class StoredFile:
    """Bytes the emulator serves: an attachment a person sent, or media the business uploaded."""

    id: str
    account_id: str
    data: bytes
    mime_type: str
    filename: str = ""
    created: float = field(default_factory=now)

    @property
    def sha256(self) -> str:
        return base64.b64encode(hashlib.sha256(self.data).digest()).decode()


@dataclass
class Attachment:
    """A DM attachment: a file served by the emulator, or a URL the business sent."""

    type: str  # image, video, audio, file
    url: str
    file: StoredFile | None = None


@dataclass
class Message:
    """A Messenger or Instagram DM, from the person or from the business."""

    id: str  # the mid
    conversation_id: str
    from_id: str
    to_id: str
    text: str
    created: float
    from_business: bool
    attachments: list[Attachment] = field(default_factory=list)
    num_edit: int = 0
    deleted: bool = False


@dataclass
class Conversation:
    id: str
    account_id: str  # the Page or the Instagram account
    person_id: str
    messages: list[Message] = field(default_factory=list)
    last_inbound: float | None = None

    @property
    def updated(self) -> float:
        visible = [message.created for message in self.messages if not message.deleted]
        return max(visible, default=0.0)


@dataclass
class Post:
    """A Page post or an Instagram media item (comments hang off both)."""

    id: str
    account_id: str
    text: str
    created: float


@dataclass
class Comment:
    id: str
    account_id: str
    post_id: str
    author_id: str
    text: str
    created: float
    parent_id: str | None = None  # the top-level comment this one replies to
    from_business: bool = False
    attachment_url: str | None = None
    private_reply_id: str | None = None  # the mid of the business's private reply, once sent
    removed: bool = False


@dataclass
class WhatsAppMessage:
    id: str  # the wamid
    account_id: str
    wa_id: str
    inbound: bool
    type: str
    content: dict  # what sits under the type's key (text, image, ...)
    created: float
    context_id: str | None = None
    status: str = "accepted"


@dataclass
class Template:
    id: str
    waba_id: str
    name: str
    language: str
    category: str
    body: str
    status: str = "APPROVED"

    @property
    def parameter_count(self) -> int:
        return sum(1 for n in range(1, 50) if f"{{{{{n}}}}}" in self.body)

    def render(self) -> dict:
        return {
            "name": self.name,
            "components": [{"type": "BODY", "text": self.body}],
            "language": self.language,
            "status": self.status,
            "category": self.category,
            "id": self.id,
        }


class Store:
    def __init__(self):
        self.lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.accounts: dict[str, Account] = {}
            self.people: dict[tuple[str, str], Person] = {}
            self.objects: dict[str, tuple[str, object]] = {}
            self.conversations: dict[tuple[str, str], Conversation] = {}
            self.posts: dict[str, Post] = {}
            self.comments: dict[str, Comment] = {}
            self.whatsapp_inbound: dict[tuple[str, str], float] = {}  # (number, wa_id) -> last message time
            self.whatsapp_messages: dict[str, WhatsAppMessage] = {}
            self.files: dict[str, StoredFile] = {}
            self.templates: list[Template] = []
            self.sent: list[dict] = []
            self.revoked_tokens: set[str] = set()
            # Ids start from a random base after each reset: the helpdesk's dedupe keys outlive a reset.
            self._numbers = itertools.count(random.randrange(10**15, 9 * 10**15, 10**6))

    # -- ids --------------------------------------------------------------------

    def new_number(self) -> str:
        return str(next(self._numbers))

    def new_mid(self, kind: str) -> str:
        if kind == "instagram":  # Instagram mids are base64 of "ig_..."
            return "aWdf" + base64.urlsafe_b64encode(secrets.token_bytes(36)).decode().rstrip("=")
        return "m_" + secrets.token_urlsafe(40)

    @staticmethod
    def new_wamid() -> str:
        return "wamid." + base64.b64encode(b"\x15\x02\x00\x12\x18\x14" + secrets.token_bytes(24)).decode()

    def register(self, object_id: str, kind: str, obj: object) -> None:
        self.objects[object_id] = (kind, obj)

    # -- accounts ---------------------------------------------------------------

    def add_account(self, account: Account) -> Account:
        if account.id in self.objects and account.id not in self.accounts:
            raise ValueError(f"id {account.id} is already another object's")
        self.accounts[account.id] = account
        self.register(account.id, account.kind, account)
        if account.kind == "whatsapp" and account.waba_id:
            self.register(account.waba_id, "waba", account.waba_id)
        return account

    def account(self, account_id: str, kind: str | None = None) -> Account:
        account = self.accounts.get(str(account_id))
        if account is None or (kind and account.kind != kind):
            raise KeyError(f"no {kind or 'account'} {account_id}")
        return account

    def instagram_of(self, page_id: str) -> Account | None:
        return next((a for a in self.accounts.values() if a.kind == "instagram" and a.page_id == page_id), None)

    def waba_numbers(self, waba_id: str) -> list[Account]:
        return [a for a in self.accounts.values() if a.kind == "whatsapp" and a.waba_id == waba_id]

    # -- people -----------------------------------------------------------------

    def person(self, account: Account, person_id: str | None, name: str | None, username: str | None) -> Person:
        """The person with this id (created if new); without an id, the one with this name, or a new one."""
        if person_id is None:
            known = next(
                (p for (a, _), p in self.people.items() if a == account.id and name and p.name == name),
                None,
            )
            if known is not None:
                return known
            person_id = self.new_number() if account.kind != "whatsapp" else "1555" + self.new_number()[-7:]
        key = (account.id, str(person_id))
        person = self.people.get(key)
        if person is None:
            default = f"Person {str(person_id)[-4:]}"
            person = Person(str(person_id), account.id, name or default, username or (name or default).lower())
            person.username = person.username.replace(" ", "_")
            self.people[key] = person
            if account.kind != "whatsapp" and person.id not in self.objects:
                self.register(person.id, "person", person)  # the User Profile API (GET /{PSID} or /{IGSID})
        else:
            person.name = name or person.name
            person.username = username or person.username
        return person

    def known_person(self, account_id: str, person_id: str) -> Person | None:
        return self.people.get((account_id, str(person_id)))

    # -- DMs --------------------------------------------------------------------

    def conversation(self, account: Account, person: Person) -> Conversation:
        key = (account.id, person.id)
        conversation = self.conversations.get(key)
        if conversation is None:
            prefix = "t_" if account.kind == "page" else "aWdfZAG06"
            conversation = Conversation(prefix + self.new_number(), account.id, person.id)
            self.conversations[key] = conversation
            self.register(conversation.id, "conversation", conversation)
        return conversation

    def add_message(self, conversation: Conversation, message: Message) -> Message:
        conversation.messages.append(message)
        self.register(message.id, "message", message)
        return message

    # -- files ------------------------------------------------------------------

    def add_file(self, account_id: str, data: bytes, mime_type: str, filename: str = "") -> StoredFile:
        file = StoredFile(self.new_number(), account_id, data, mime_type, filename)
        self.files[file.id] = file
        self.register(file.id, "media_file", file)
        return file
