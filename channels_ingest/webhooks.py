"""Signed push endpoints: verify, store, answer fast; ingestion runs after commit."""

import logging

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from channel_adapters.base import Capability, InvalidWebhook

from .ingest import store_envelopes
from .models import Channel

logger = logging.getLogger(__name__)


@csrf_exempt  # authenticated by the platform's signature instead
@require_POST
def receive(request, public_id):
    channel = Channel.objects.filter(public_id=public_id, enabled=True).first()
    if channel is None:
        logger.warning("webhook for unknown or disabled channel %s", public_id)
        return JsonResponse({"error": "Unknown channel."}, status=404)
    adapter = channel.adapter()
    if Capability.WEBHOOK not in adapter.capabilities:
        return JsonResponse({"error": "This channel does not take webhooks."}, status=404)
    try:
        body = request.body
    except RequestDataTooBig:
        logger.warning("channel %s: webhook refused: body over DATA_UPLOAD_MAX_MEMORY_SIZE", channel.name)
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return JsonResponse({"error": f"The body is larger than {limit} bytes."}, status=413)
    try:
        result = adapter.handle_webhook(headers=request.headers, body=body)
    except InvalidWebhook as exc:
        logger.warning("channel %s: webhook refused (%s): %s", channel.name, exc.status, exc)
        response = JsonResponse({"error": str(exc)}, status=exc.status)
        for header, value in exc.headers.items():
            response[header] = value
        return response
    stored = store_envelopes(channel, result.envelopes, result.rejected)
    logger.info("channel %s: webhook stored %d of %d", channel.name, stored, len(result.envelopes))
    if isinstance(result.body, str):
        response = HttpResponse(result.body, status=result.status, content_type="text/plain")
    else:
        response = JsonResponse(result.body, status=result.status)
    for header, value in result.headers.items():
        response[header] = value
    return response
