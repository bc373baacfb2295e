"""An email's HTML body, for the sandboxed frame under its message (console.emails says why a view)."""

from django.http import Http404
from django.shortcuts import get_object_or_404, render
from django.views.decorators.clickjacking import xframe_options_sameorigin

from tickets.models import Message

from .access import agent_required
from .emails import clean_html, email_parts


@xframe_options_sameorigin
@agent_required
def message_html(request, pk):
    """The sanitized HTML of an email message, with its inline images in place and remote images left out
    unless ``?remote=1``.

    The policy backs the sanitizer: the document runs no script (``sandbox`` without ``allow-scripts``, an
    opaque origin), fetches nothing but images (from this site, plus anywhere once the agent asked), and may
    only be framed by the console. No referrer goes with a remote image.
    """
    message = get_object_or_404(Message.objects.only("id", "meta").with_files(), pk=pk)
    parts = email_parts(message, message.files)
    if parts is None or not parts.html:
        raise Http404("This message has no HTML body.")
    remote = request.GET.get("remote") == "1"
    html, blocked = clean_html(parts, remote=remote)
    response = render(request, "console/email_html.html", {"html": html, "blocked": blocked})
    images = "'self' https: http:" if remote else "'self'"
    response["Content-Security-Policy"] = (
        f"default-src 'none'; img-src {images}; style-src 'unsafe-inline'; frame-ancestors 'self'; "
        "form-action 'none'; sandbox allow-popups allow-popups-to-escape-sandbox"
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Referrer-Policy"] = "no-referrer"
    response["Cache-Control"] = "private, no-store"
    return response
