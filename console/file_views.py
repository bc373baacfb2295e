"""Attachments in the console: agent-only downloads, and a file's line while it is being downloaded."""

import re

from django.core import signing
from django.http import FileResponse, Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.http import content_disposition_header

from channel_adapters.base import AdapterError
from channels_ingest.downloads import open_original
from tickets.attachments import safe_content_type, safe_filename
from tickets.models import Attachment, Message

from .access import agent_required
from .players import player_for

#: One range of bytes (``Range: bytes=0-499``, ``bytes=500-``, ``bytes=-500``); several ranges are not served.
_ONE_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
_CHUNK = 64 * 1024
RANGE_NOT_SATISFIABLE = 416


@agent_required
def attachment_download(request, pk):
    """A stored file, for agents only: raster images, voice notes and videos inline (thumbnails and players),
    everything else as a download.

    The file is never reachable at a public URL. nosniff and a sandboxing CSP keep a mislabelled file from
    being run as a page of this site. One byte range is served on request (206): media players ask for
    ranges to seek, and Safari plays no audio or video from a server that does not answer them.
    """
    return _serve(request, get_object_or_404(Attachment, pk=pk, status=Attachment.Status.STORED))


#: How long the link to an email's inline image works (``email_image_url``): the frame that shows it gets new
#: links each time it is loaded.
EMAIL_IMAGE_LINK_SECONDS = 3600
_EMAIL_IMAGE_SALT = "console.email-image"


def email_image_url(attachment) -> str:
    """A link to an inline image of an email that works without the session, for a limited time.

    The email's HTML frame is sandboxed without ``allow-same-origin``: its document has an opaque origin, so
    the browser sends the SameSite session cookie with none of its requests, and ``console:attachment``
    would answer an image with the login page. This signed link stands in for the session, for that one
    image only, and only while it is fresh."""
    token = signing.dumps(attachment.pk, salt=_EMAIL_IMAGE_SALT)
    return reverse("console:email-image", args=[token])


def email_image(request, token):
    """An email's inline image, by the signed link ``email_image_url`` made: raster images only."""
    try:
        pk = signing.loads(token, salt=_EMAIL_IMAGE_SALT, max_age=EMAIL_IMAGE_LINK_SECONDS)
    except signing.BadSignature:
        raise Http404("This link is not valid, or has expired.") from None
    attachment = get_object_or_404(Attachment, pk=pk, status=Attachment.Status.STORED)
    if not attachment.is_inline_image:
        raise Http404("Only images are shown this way.")
    return _serve(request, attachment)


def _serve(request, attachment):
    try:
        handle = attachment.file.open("rb")
        size = attachment.file.size
    except (OSError, ValueError):
        raise Http404("The file is missing from storage.") from None
    inline = attachment.is_inline_image or bool(player_for(attachment))
    content_type = safe_content_type(attachment.content_type)
    wanted = _byte_range(request, size)
    if wanted is None:
        response = FileResponse(
            handle, as_attachment=not inline, filename=safe_filename(attachment.name), content_type=content_type
        )
    elif wanted == ():
        handle.close()
        response = HttpResponse(status=RANGE_NOT_SATISFIABLE)
        response["Content-Range"] = f"bytes */{size}"
    else:
        start, end = wanted
        response = StreamingHttpResponse(_read(handle, start, end), status=206, content_type=content_type)
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
        response["Content-Length"] = str(end - start + 1)
        response["Content-Disposition"] = content_disposition_header(not inline, safe_filename(attachment.name))
    response["Accept-Ranges"] = "bytes"
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, max-age=300"
    return response


def _byte_range(request, size):
    """The one byte range asked for, as (first, last) inclusive; None to send the whole file (no range, several
    ranges, a malformed one, or an ``If-Range``, which would need validators this view does not keep); ``()``
    when the range lies past the end of the file (416)."""
    header = request.headers.get("Range", "")
    found = _ONE_RANGE.fullmatch(header.strip())
    if not found or "If-Range" in request.headers:
        return None
    first, last = found.groups()
    if not first and not last:
        return None
    if not first:  # the last N bytes
        suffix = int(last)
        return (max(0, size - suffix), size - 1) if suffix and size else ()
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if last and int(last) < start:
        return None
    return (start, end) if start < size else ()


def _read(handle, start, end):
    """The bytes ``start``…``end`` of an open file, in chunks; closes it however the response ends."""
    try:
        handle.seek(start)
        left = end - start + 1
        while left > 0:
            chunk = handle.read(min(_CHUNK, left))
            if not chunk:
                return
            left -= len(chunk)
            yield chunk
    finally:
        handle.close()


@agent_required
def attachment_status(request, pk):
    """One attachment's line under its message, polled while it is being downloaded."""
    attachment = get_object_or_404(Attachment.objects.select_related("message"), pk=pk)
    return render(request, "console/_attachment.html", {"attachment": attachment, "message": attachment.message})


@agent_required
def message_original(request, pk):
    """A message as its platform delivered it (an email's .eml), streamed from the platform on request: the
    desk keeps what agents read, the mailbox keeps the original."""
    message = get_object_or_404(Message.objects.select_related("thread__channel"), pk=pk)
    try:
        original = open_original(message)
    except AdapterError as exc:
        return HttpResponse(f"The original could not be read: {exc}", status=502, content_type="text/plain")
    if original is None:
        raise Http404("This message has no original kept on its platform.")
    response = StreamingHttpResponse(original.chunks, content_type=safe_content_type(original.content_type))
    response["Content-Disposition"] = content_disposition_header(True, safe_filename(original.name))
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, no-store"
    return response
