"""A strict Content-Security-Policy on every page (django-csp), and no inline script or style in the templates that
would need it loosened. Views that serve untrusted content (an email's HTML, an attachment) set a stricter policy of
their own, which the middleware leaves alone: tests/console/test_email_messages.py and test_file_views.py check
theirs."""

import re
from pathlib import Path

import pytest
from django.urls import reverse

from tests.helpers import ROOT

STRICT = {
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "frame-ancestors 'none'",
    "form-action 'self'",
}


def directives(response) -> set[str]:
    return {part.strip() for part in response["Content-Security-Policy"].split(";")}


@pytest.fixture
def pages(ticket, tickets, agent):
    """One URL of each kind of console page (with the method and data that show it)."""
    ids = [t.pk for t in tickets[:2]]
    return [
        ("get", reverse("console:ticket-list"), {}),
        ("get", reverse("console:ticket-detail", args=[ticket.pk]), {}),
        ("get", reverse("console:triage"), {}),
        ("get", reverse("console:channels"), {}),
        ("get", reverse("console:macro-list"), {}),
        ("get", reverse("console:macro-create"), {}),
        ("post", reverse("console:ticket-merge"), {"ids": ids}),
        ("get", reverse("console:ticket-rows"), {}),  # an htmx fragment
        ("get", reverse("accounts:two-factor"), {}),
    ]


def test_every_console_page_has_the_strict_policy(client, agent, pages):
    client.force_login(agent)
    for method, url, data in pages:
        response = getattr(client, method)(url, data)
        assert response.status_code == 200, url
        assert directives(response) >= STRICT, url


@pytest.mark.django_db
def test_the_sign_in_and_error_pages_have_it_too(client, employee):
    assert directives(client.get(reverse("login"))) >= STRICT
    client.force_login(employee)
    forbidden = client.get(reverse("console:ticket-list"))
    assert forbidden.status_code == 403
    assert directives(forbidden) >= STRICT


INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)
HANDLER_ATTRIBUTE = re.compile(r"\s(on[a-z]+|hx-on[:\-][\w:\-]*)\s*=", re.IGNORECASE)
STYLE = re.compile(r"<style\b|\sstyle\s*=", re.IGNORECASE)
JAVASCRIPT_URL = re.compile(r"""(href|src|action)\s*=\s*["']?\s*javascript:""", re.IGNORECASE)
#: The email frame serves sanitized mail under a policy of its own (console/email_views.py), which allows its styles.
OWN_POLICY = {"console/email_html.html"}


def test_no_template_has_inline_script_handlers_or_styles():
    offences = []
    for path in sorted((Path(ROOT) / "templates").rglob("*.html")):
        name = path.relative_to(Path(ROOT) / "templates").as_posix()
        text = path.read_text()
        patterns = [INLINE_SCRIPT, HANDLER_ATTRIBUTE, JAVASCRIPT_URL] + ([] if name in OWN_POLICY else [STYLE])
        offences += [f"{name}: {match.group(0).strip()}" for pattern in patterns for match in pattern.finditer(text)]
    assert offences == []


def test_the_scan_finds_what_it_looks_for():
    sample = '<script>alert(1)</script><button onclick="x()" style="color:red"><a href="javascript:x()">'
    assert INLINE_SCRIPT.search(sample)
    assert HANDLER_ATTRIBUTE.search(sample)
    assert STYLE.search(sample)
    assert JAVASCRIPT_URL.search(sample)
    assert not INLINE_SCRIPT.search('<script src="/static/console.js" defer></script>')
