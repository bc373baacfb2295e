"""An email message in the console, from ``Message.meta["email"]``: headers, folded history and signature,
decoding notes, the raw original, the HTML view with inline images in place and remote images held back."""

import re
import time
from html import unescape

import pytest
from django.test import Client
from django.urls import reverse

from console import file_views
from tests.helpers import PNG, add_email, detail_url, queries_for, text_of
from tickets.models import Attachment, Message

RAW = b"From: Ann <ann@example.com>\r\nSubject: Printer\r\n\r\nThe printer is on fire\r\n"


#: What the email channel keeps for an original it reads back from the mailbox (``meta["original"]``).
ORIGINAL = {"ref": "{}", "name": "original.eml", "content_type": "message/rfc822", "size": len(RAW)}


def with_files(ticket, *, html, minute=0, **email):
    """An email with an inline image (cid "logo@x"), a PDF, an original in the mailbox, and ``html``."""
    files = [("logo.png", PNG, "image/png"), ("report.pdf", b"%PDF", "application/pdf")]
    return add_email(ticket, minute=minute, files=files, html=html, original=ORIGINAL, inline={"logo@x": 0}, **email)


def entry(page, message):
    """One message's ``<li>`` on the page."""
    start = page.index(f'<li id="message-{message.pk}"')
    ends = [page.find(mark, start + 1) for mark in ('<li id="message-', "</ol>")]
    return page[start : min(end for end in ends if end > 0)]


def page_of(client, ticket):
    response = client.get(detail_url(ticket))
    assert response.status_code == 200
    return response.content.decode()


def html_view(client, message, **params):
    return client.get(reverse("console:message-html", args=[message.pk]), params)


def files_listed(item):
    return re.findall(r'class="attachment-name"[^>]*><bdi>([^<]*)</bdi>', item)


def download(attachment):
    return reverse("console:attachment", args=[attachment.pk])


@pytest.mark.django_db
def test_new_text_shows_with_the_quoted_history_and_signature_folded(agent_client, ticket):
    email = add_email(
        ticket,
        body="Still broken.",
        quoted="Still broken.\n\nOn Monday, Desk wrote:\n> Have you tried turning it off?",
        signature="Ann Employee\nFacilities",
    )
    item = entry(page_of(agent_client, ticket), email)
    body = re.search(r'<div class="message-body" dir="auto">(.*?)</div>', item, re.S).group(1)
    assert body == "Still broken."
    quoted = re.search(r'<details class="email-quoted"><summary>Show quoted text</summary>(.*?)</details>', item, re.S)
    assert "&gt; Have you tried turning it off?" in quoted.group(1)
    signature = re.search(
        r'<details class="email-signature"><summary>Show signature</summary>(.*?)</details>', item, re.S
    )
    assert "Ann Employee\nFacilities" in signature.group(1)
    assert "<details open" not in item  # folded until the agent opens them


@pytest.mark.django_db
def test_a_reply_without_history_or_signature_has_no_folds(agent_client, ticket):
    email = add_email(ticket)
    item = entry(page_of(agent_client, ticket), email)
    for fold in ("email-quoted", "email-signature", "email-html", "email-notes", "email-original"):
        assert fold not in item
    assert "Printer" in item  # the headers are still there


@pytest.mark.django_db
def test_headers_are_folded_under_the_subject(agent_client, ticket):
    email = add_email(
        ticket,
        subject="Printer on fire",
        to=[{"email": "help@desk.example", "name": "Help Desk"}, {"email": "it@desk.example", "name": ""}],
        cc=[{"email": "bob@example.com", "name": "Bob"}],
    )
    item = entry(page_of(agent_client, ticket), email)
    headers = re.search(r'<details class="email-headers">(.*?)</details>', item, re.S).group(1)
    assert text_of(re.search(r"<summary>(.*?)</summary>", headers).group(1)) == "Email headers: Printer on fire"
    fields = dict(re.findall(r"<dt>(.*?)</dt><dd>(.*?)</dd>", headers))
    assert {name: unescape(text_of(value)) for name, value in fields.items()} == {
        "From": "Ann Employee <ann@example.com>",
        "To": "Help Desk <help@desk.example>, it@desk.example",
        "Cc": "Bob <bob@example.com>",
    }


@pytest.mark.django_db
def test_what_could_not_be_decoded_is_a_visible_note(agent_client, ticket):
    email = add_email(ticket, notes=["Part 2 declared charset x-unknown; kept as Latin-1"])
    item = entry(page_of(agent_client, ticket), email)
    note = re.search(r'<div class="email-notes" role="note">(.*?)</div>', item, re.S)
    assert "Part 2 declared charset x-unknown; kept as Latin-1" in note.group(1)
    assert item.index("</details>") < item.index("email-notes")  # after the folded headers, not inside them


HOSTILE = "<script>alert(1)</script>"
TRICKY = "🔥 שלום\u200b\u202eevil\u202c"


@pytest.mark.django_db
def test_every_email_text_is_escaped(agent_client, ticket):
    email = add_email(
        ticket,
        body=f"body {HOSTILE} {TRICKY}",
        subject=f"subject {HOSTILE} {TRICKY}",
        **{"from": {"email": f"x{HOSTILE}@example.com", "name": f"name {HOSTILE} {TRICKY}"}},
        to=[{"email": "help@desk.example", "name": f'to" onmouseover="alert(1) {HOSTILE}'}],
        cc=[{"email": "c@example.com", "name": f"cc {HOSTILE}"}],
        notes=[f"note {HOSTILE} {TRICKY}"],
        quoted=f"quoted {HOSTILE}",
        signature=f"signature {HOSTILE}",
    )
    item = entry(page_of(agent_client, ticket), email)
    assert "<script" not in item
    assert 'onmouseover="' not in item
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    for where in (
        "body",
        "subject",
        "name",
        "to&quot; onmouseover=&quot;alert(1)",
        "cc",
        "note",
        "quoted",
        "signature",
    ):
        assert f"{where} {escaped}" in item, where
    assert f"x{escaped}@example.com" in item
    # Emoji, right-to-left text and invisible characters come through unchanged, each inside an isolate.
    assert item.count(TRICKY) == 4
    assert f'<bdi class="email-subject">subject {escaped} {TRICKY}</bdi>' in item
    assert f"<bdi>name {escaped} {TRICKY}</bdi>" in item


@pytest.mark.django_db
def test_a_malformed_email_meta_is_ignored(agent_client, ticket):
    message = Message.objects.create(
        ticket=ticket,
        direction=Message.Direction.INBOUND,
        body="odd",
        meta={"email": {"subject": ["not", "text"], "to": "x", "notes": "y", "inline": [1]}, "original": 9},
    )
    other = Message.objects.create(
        ticket=ticket, direction=Message.Direction.INBOUND, body="odder", meta={"email": "x"}
    )
    page = page_of(agent_client, ticket)
    assert "(no subject)" in entry(page, message)
    assert "email-headers" not in entry(page, other)


@pytest.mark.django_db
def test_the_original_is_a_link_to_the_mailbox_copy(agent_client, ticket):
    email = with_files(ticket, html="")
    item = entry(page_of(agent_client, ticket), email)
    original = reverse("console:message-original", args=[email.pk])
    assert f'<a href="{original}" download>Download original (.eml)</a>' in item
    # Without an HTML view the inline image is an ordinary file (and its thumbnail).
    assert files_listed(item) == ["logo.png", "report.pdf"]


@pytest.mark.django_db
def test_no_original_no_link(agent_client, ticket):
    email = add_email(ticket, files=[("report.pdf", b"%PDF", "application/pdf")])
    item = entry(page_of(agent_client, ticket), email)
    assert "Download original" not in item
    assert files_listed(item) == ["report.pdf"]


@pytest.mark.django_db
def test_inline_images_shown_in_the_html_are_not_listed(agent_client, ticket):
    email = with_files(ticket, html='<p>Hi</p><img src="cid:logo@x">')
    item = entry(page_of(agent_client, ticket), email)
    assert files_listed(item) == ["report.pdf"]


@pytest.mark.django_db
def test_an_inline_image_still_downloading_stays_listed_with_its_state(agent_client, ticket):
    email = with_files(ticket, html='<p>Hi</p><img src="cid:logo@x">')
    Attachment.objects.filter(name="logo.png").update(status=Attachment.Status.PENDING)
    item = entry(page_of(agent_client, ticket), email)
    assert files_listed(item) == ["logo.png", "report.pdf"]


@pytest.mark.django_db
def test_the_html_view_is_a_sandboxed_frame_loaded_on_request(agent_client, ticket):
    email = with_files(ticket, html="<p>Hi</p>")
    item = entry(page_of(agent_client, ticket), email)
    url = reverse("console:message-html", args=[email.pk])
    frame = re.search(r'<details class="email-html"><summary>View HTML</summary>(<iframe [^>]*></iframe>)', item)
    attributes = dict(re.findall(r'(\w[\w-]*)="([^"]*)"', frame.group(1)))
    assert attributes["data-src"] == url
    assert "src" not in attributes  # console.js sets it when the agent opens the view
    assert "allow-scripts" not in attributes["sandbox"]
    assert "allow-same-origin" not in attributes["sandbox"]
    assert f'<a href="{url}?remote=1" target="{attributes["name"]}"' in item
    assert "<p>Hi</p>" not in item  # the HTML itself is not in the page


@pytest.mark.django_db
def test_the_html_view_has_a_strict_policy(agent_client, employee, ticket):
    email = with_files(ticket, html="<p>Hi <b>there</b></p>")
    response = html_view(agent_client, email)
    assert response.status_code == 200
    assert "<p>Hi <b>there</b></p>" in response.content.decode()
    policy = [d.strip() for d in response["Content-Security-Policy"].split(";")]
    assert "default-src 'none'" in policy
    assert "img-src 'self'" in policy
    assert "frame-ancestors 'self'" in policy
    sandbox = next(d for d in policy if d.startswith("sandbox"))
    assert "allow-scripts" not in sandbox
    assert "allow-same-origin" not in sandbox
    assert response["X-Frame-Options"] == "SAMEORIGIN"
    assert response["Referrer-Policy"] == "no-referrer"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "script-src" not in response["Content-Security-Policy"]

    client = Client()
    assert client.get(reverse("console:message-html", args=[email.pk])).status_code == 302
    client.force_login(employee)
    assert client.get(reverse("console:message-html", args=[email.pk])).status_code == 403
    plain = add_email(ticket, minute=1)
    assert html_view(agent_client, plain).status_code == 404
    assert html_view(agent_client, ticket.messages.exclude(meta__has_key="email").get()).status_code == 404


@pytest.mark.django_db
def test_the_html_view_is_sanitized_again(agent_client, ticket):
    """What the channel stored is sanitized; the view does not trust that it was."""
    email = with_files(
        ticket, html='<p onclick="alert(1)">Hi</p><script>alert(2)</script><iframe src="https://x"></iframe>'
    )
    body = html_view(agent_client, email).content.decode()
    assert "<p>Hi</p>" in body
    for bad in ("onclick", "<script", "alert(2)", "<iframe"):
        assert bad not in body


@pytest.mark.django_db
def test_cid_images_point_at_their_stored_attachment(agent_client, ticket):
    """By a signed link: the sandboxed frame's requests carry no session cookie (tests/browser shows it)."""
    email = with_files(
        ticket,
        html='<img src="cid:logo@x" alt="Logo"><img src="CID:%3Clogo@x%3E" alt="again"><img src="cid:nobody@x" alt="lost">',
    )
    body = html_view(agent_client, email).content.decode()
    sources = re.findall(r'<img src="([^"]*)" alt="(\w+)">', body)
    assert [alt for _, alt in sources] == ["Logo", "again"]
    assert '<img alt="lost">' in body  # a Content-ID the email did not carry points nowhere
    assert "cid:" not in body.lower()
    image = Client().get(sources[0][0])  # no session
    assert image.status_code == 200
    assert b"".join(image.streaming_content) == PNG
    assert image["Content-Type"] == "image/png"
    assert image["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in image["Content-Security-Policy"]


@pytest.mark.django_db
def test_an_inline_image_link_is_for_that_image_only(ticket, settings):
    email = with_files(ticket, html='<img src="cid:logo@x">')
    logo, pdf = email.attachments.get(name="logo.png"), email.attachments.get(name="report.pdf")
    link = file_views.email_image_url(logo)
    assert Client().get(link).status_code == 200
    assert Client().get(link.replace("/email-image/", "/email-image/x")).status_code == 404
    assert Client().get(file_views.email_image_url(pdf)).status_code == 404  # only images are served this way
    assert Client().get(download(logo)).status_code == 302  # the ordinary link still needs a session
    settings.SECRET_KEY = "another key"
    assert Client().get(link).status_code == 404


@pytest.mark.django_db
def test_an_inline_image_link_expires(ticket, monkeypatch):
    email = with_files(ticket, html='<img src="cid:logo@x">')
    link = file_views.email_image_url(email.attachments.get(name="logo.png"))
    monkeypatch.setattr(file_views, "EMAIL_IMAGE_LINK_SECONDS", 0)
    time.sleep(1.1)
    assert Client().get(link).status_code == 404


@pytest.mark.django_db
def test_remote_images_wait_for_the_agent(agent_client, ticket):
    html = (
        '<p>News</p><img src="https://tracker.example/open.gif?u=ann" alt="pixel">'
        '<img src="http://cdn.example/a.png"><img src="//cdn.example/b.png"><img src="/console/" alt="local">'
        '<a href="https://example.com/article">Read</a>'
    )
    email = with_files(ticket, html=html)
    blocked = html_view(agent_client, email)
    body = blocked.content.decode()
    assert "tracker.example" not in body
    assert "cdn.example" not in body
    assert '<img alt="pixel">' in body
    assert "3 remote images not loaded." in text_of(body)
    assert '<img alt="local">' in body  # a URL of this site chosen by the sender is not fetched either
    assert 'href="https://example.com/article"' in body  # links stay; they are not loaded by reading
    assert "img-src 'self';" in blocked["Content-Security-Policy"]

    loaded = html_view(agent_client, email, remote="1")
    body = loaded.content.decode()
    assert '<img src="https://tracker.example/open.gif?u=ann" alt="pixel">' in body
    assert '<img src="http://cdn.example/a.png">' in body
    assert '<img src="//cdn.example/b.png">' in body
    assert '<img alt="local">' in body
    assert "not loaded" not in body
    assert "img-src 'self' https: http:;" in loaded["Content-Security-Policy"]


@pytest.mark.django_db
def test_the_timeline_of_many_emails_takes_the_same_queries(agent_client, ticket):
    """Headers, folds, HTML views, originals and inline images come from the message and its prefetched
    files: 40 emails cost no more queries than 1."""

    def emails(start, count):
        for n in range(start, start + count):
            with_files(
                ticket,
                minute=n,
                html='<img src="cid:logo@x">',
                quoted="history",
                signature="sig",
                notes=["note"],
                cc=[{"email": "bob@example.com", "name": "Bob"}],
            )

    emails(1, 1)
    few = queries_for(agent_client, detail_url(ticket))
    emails(2, 39)
    page = page_of(agent_client, ticket)
    assert page.count("Download original (.eml)") == 40
    assert page.count('class="email-html"') == 40
    assert queries_for(agent_client, detail_url(ticket)) == few
