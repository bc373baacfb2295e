"""Attachments in the console: agent-only downloads, and a file's line while it is being downloaded."""

from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, render

from tickets.attachments import safe_content_type, safe_filename
from tickets.models import Attachment

from .access import agent_required


@agent_required
def attachment_download(request, pk):
    """A stored file, for agents only: raster images inline (thumbnails), everything else as a download.

    The file is never reachable at a public URL. nosniff and a sandboxing CSP keep a mislabelled
    file from being run as a page of this site.
    """
    attachment = get_object_or_404(Attachment, pk=pk, status=Attachment.Status.STORED)
    try:
        handle = attachment.file.open("rb")
    except (OSError, ValueError):
        raise Http404("The file is missing from storage.") from None
    inline = attachment.is_inline_image
    response = FileResponse(
        handle,
        as_attachment=not inline,
        filename=safe_filename(attachment.name),
        content_type=safe_content_type(attachment.content_type),
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, max-age=300"
    return response


@agent_required
def attachment_status(request, pk):
    """One attachment's line under its message, polled while it is being downloaded."""
    attachment = get_object_or_404(Attachment.objects.select_related("message"), pk=pk)
    return render(request, "console/_attachment.html", {"attachment": attachment, "message": attachment.message})
