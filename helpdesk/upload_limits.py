"""Request bodies are capped before anything reads them.

Django spools an uploaded file to a temporary file as it reads the body, so without a cap a client could fill the
disk with one request before any view had a say. This middleware answers 413 from the Content-Length header alone,
before the body is read. That covers every body: Django reads no more of a request than its Content-Length says
(a body without one reads as empty).
"""

from django.conf import settings
from django.http import HttpResponse

TOO_LARGE = 413


class UploadLimitMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return HttpResponse("Bad Content-Length.", status=400, content_type="text/plain; charset=utf-8")
        if length > settings.UPLOAD_MAX_BYTES:
            limit_mb = settings.UPLOAD_MAX_BYTES / (1024 * 1024)
            return HttpResponse(
                f"This request is too large: at most {limit_mb:.0f} MB may be sent at once. Nothing was saved.",
                status=TOO_LARGE,
                content_type="text/plain; charset=utf-8",
            )
        return self.get_response(request)
