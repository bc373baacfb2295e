"""An email message in the console, from what the email channel keeps in ``Message.meta["email"]``
(docs: the email channel's meta layout): its headers, the quoted history and signature folded away from the
new text, the notes on what could not be decoded, the raw original, and its HTML body.

Any message carrying that meta is shown this way, whatever channel stored it; a malformed value is ignored
rather than allowed to break the timeline. Indexes in the meta point into the message's attachments ordered
by id (the order they were created in, which is the envelope's).

The HTML body is not put into the ticket page (``srcdoc``) but served by its own view (``email_views``), loaded
into a sandboxed iframe when the agent opens "View HTML". Reasons: the page and its live poll do not carry
every message's HTML (newsletters run to hundreds of kilobytes, a ticket page shows 50 messages); and the
frame's document gets its own strict Content-Security-Policy (no script, images only from this site unless
the agent loads remote ones), which backs the sanitizer and the rewriting below instead of relying on them
alone, while a ``srcdoc`` frame would inherit the console's policy.
"""

from dataclasses import dataclass, field
from html import escape
from urllib.parse import unquote, urlsplit

import nh3
from django.urls import reverse

from .file_views import email_image_url

#: What the email channel lets through (``cid:`` for inline images); cleaning again here with the same
#: allow-list changes nothing in what it stored, and is where the image sources are rewritten.
_URL_SCHEMES = nh3.ALLOWED_URL_SCHEMES | {"cid"}
_REMOTE_SCHEMES = ("http", "https")


def _e(value) -> str:
    return escape(str(value), quote=True)


def email_of(message) -> dict | None:
    """The message's email facts, or None when it has none (not an email, or a malformed value)."""
    email = message.meta.get("email") if isinstance(message.meta, dict) else None
    return email if isinstance(email, dict) else None


def _text(email, key) -> str:
    value = email.get(key)
    return value if isinstance(value, str) else ""


def _file_at(files, index):
    if isinstance(index, int) and not isinstance(index, bool) and 0 <= index < len(files):
        return files[index]
    return None


def _stored(attachment) -> bool:
    return attachment is not None and attachment.status == attachment.Status.STORED


def _content_id(value: str) -> str:
    """A Content-ID as the meta keys it and a ``cid:`` URL names it (RFC 2392: %-encoded, no angle brackets)."""
    return unquote(value).strip().strip("<>").strip().lower()


@dataclass
class EmailParts:
    """What the timeline shows of one email: ``listed`` are the files shown as ordinary attachments."""

    email: dict
    listed: list
    #: Where the original (.eml) is read from the mailbox, when the message names one (``meta["original"]``).
    original_url: str = ""
    inline: dict = field(default_factory=dict)

    @property
    def html(self) -> str:
        return _text(self.email, "html")


def email_parts(message, files) -> EmailParts | None:
    """The parts of an email message (None if ``message`` is not one), with ``files`` its attachments by id.

    The inline images the HTML view shows in place are not listed as files. One that is not stored (still
    downloading, failed) stays listed, so its state shows."""
    email = email_of(message)
    if email is None:
        return None
    files = list(files)
    inline = {}
    references = email.get("inline")
    for content_id, index in references.items() if isinstance(references, dict) else ():
        attachment = _file_at(files, index)
        if _stored(attachment) and attachment.is_inline_image:
            inline[_content_id(str(content_id))] = attachment
    original = message.meta.get("original")
    original_url = reverse("console:message-original", args=[message.pk]) if isinstance(original, dict) else ""
    parts = EmailParts(email=email, listed=files, original_url=original_url, inline=inline)
    if parts.html:
        hidden = {attachment.pk for attachment in inline.values()}
        parts.listed = [f for f in files if f.pk not in hidden]
    return parts


def clean_html(parts: EmailParts, *, remote: bool) -> tuple[str, int]:
    """The email's HTML for its frame, and how many remote images were left out.

    ``cid:`` images become a download link of the matching stored attachment (a signed one: the sandboxed
    frame's requests carry no session, ``file_views.email_image_url``). Remote images (http, https)
    are left out unless ``remote``: loading one tells the sender when, where and that the mail was read
    (tracking pixels). Any other image source (relative, or an unknown Content-ID) is dropped, so nothing in
    the mail makes the agent's browser fetch a URL of this site it chose. The rewriting runs in nh3's
    attribute filter, on the parsed document, never on the raw markup."""
    blocked = 0

    def image_source(element, attribute, value):
        nonlocal blocked
        if element != "img" or attribute != "src":
            return value
        scheme = urlsplit(value.strip()).scheme.lower()
        if scheme == "cid":
            attachment = parts.inline.get(_content_id(value.strip()[4:]))
            return email_image_url(attachment) if attachment else None
        if scheme in _REMOTE_SCHEMES or value.strip().startswith("//"):
            if remote:
                return value
            blocked += 1
        return None

    cleaned = nh3.clean(parts.html, url_schemes=_URL_SCHEMES, attribute_filter=image_source)
    return cleaned, blocked


def _address(person) -> str:
    if not isinstance(person, dict):
        return ""
    name, address = _text(person, "name"), _text(person, "email")
    if name and address:
        return f"<bdi>{_e(name)}</bdi> &lt;<bdi>{_e(address)}</bdi>&gt;"
    return f"<bdi>{_e(name or address)}</bdi>"


def _addresses(people) -> str:
    shown = [_address(p) for p in people] if isinstance(people, list) else []
    return ", ".join(s for s in shown if s)


def _folded(css, label, text) -> str:
    return (
        f'<details class="{css}"><summary>{label}</summary>'
        f'<div class="message-body email-folded" dir="auto">{_e(text)}</div></details>'
    )


def header_section(parts: EmailParts) -> str:
    """Subject, From, To, Cc (and Reply-To) folded under the subject, then the notes on what could not be
    decoded, which stay visible: the agent reads what was kept raw knowing it is."""
    email = parts.email
    subject = _text(email, "subject")
    rows = [
        ("From", _address(email.get("from"))),
        ("To", _addresses(email.get("to"))),
        ("Cc", _addresses(email.get("cc"))),
        ("Reply-To", _addresses(email.get("reply_to"))),
    ]
    fields = "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in rows if value)
    summary = (
        f'<bdi class="email-subject">{_e(subject)}</bdi>' if subject else '<span class="muted">(no subject)</span>'
    )
    out = [
        '<details class="email-headers"><summary><span class="visually-hidden">Email headers: </span>'
        f'{summary}</summary><dl class="email-fields">{fields}</dl></details>'
    ]
    notes = (
        [n for n in email.get("notes", ()) if isinstance(n, str) and n] if isinstance(email.get("notes"), list) else []
    )
    if notes:
        items = "".join(f'<li dir="auto">{_e(note)}</li>' for note in notes)
        out.append(
            '<div class="email-notes" role="note"><strong><span aria-hidden="true">⚠ </span>'
            f"Not everything in this email could be decoded; it is kept as it came:</strong><ul>{items}</ul></div>"
        )
    return "".join(out)


def body_sections(message, parts: EmailParts) -> str:
    """What follows the new text: the full text with its history, the signature, the HTML view and the
    original. The folds are ``<details>``: they open without script. The HTML frame is loaded when opened
    (static/console.js); "Load remote images" reloads it, by name, with them."""
    email = parts.email
    out = []
    quoted, signature = _text(email, "quoted"), _text(email, "signature")
    if quoted:
        out.append(_folded("email-quoted", "Show quoted text", quoted))
    if signature:
        out.append(_folded("email-signature", "Show signature", signature))
    if parts.html:
        url = reverse("console:message-html", args=[message.pk])
        name = f"email-html-{message.pk}"
        out.append(
            f'<details class="email-html"><summary>View HTML</summary>'
            f'<iframe name="{name}" class="email-html-frame" data-src="{url}" sandbox="allow-popups'
            ' allow-popups-to-escape-sandbox" referrerpolicy="no-referrer" title="The email as HTML"></iframe>'
            f'<p class="email-html-actions"><a href="{url}?remote=1" target="{name}" class="email-remote">'
            'Load remote images</a> <span class="muted">(the sender may learn that you read it)</span></p>'
            "</details>"
        )
    if parts.original_url:
        out.append(
            f'<p class="email-original"><a href="{parts.original_url}" download>Download original (.eml)</a></p>'
        )
    return "".join(out)
