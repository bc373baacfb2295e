"""Signed push endpoints: verify, store, answer fast; ingestion runs after commit."""

import logging

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from channel_adapters.base import Capability, InvalidWebhook

from .ingest import store_envelopes
from .models import Channel
from .outages import is_outage, warn_outage

logger = logging.getLogger(__name__)

#: Seconds a platform is asked to wait before sending again what an outage kept us from storing.
OUTAGE_RETRY_AFTER = 10


@csrf_exempt  # authenticated by the platform's signature instead
@require_http_methods(["GET", "POST"])
def receive(request, public_id):
    """Nothing is stored while the database is down: the platform is told to send it again (every platform
    resends on a 5xx), with one line in the log rather than a traceback per push."""
    try:
        return _receive(request, public_id)
    except Exception as exc:
        if not is_outage(exc):
            raise
        warn_outage(f"webhook for channel {public_id} not stored; the platform will send it again", exc)
        response = JsonResponse({"error": "The helpdesk's database is unavailable; send this again later."}, status=503)
        response["Retry-After"] = str(OUTAGE_RETRY_AFTER)
        return response


def _receive(request, public_id):
    channel = Channel.objects.filter(public_id=public_id, enabled=True).first()
    if channel is None:
        logger.warning("webhook for unknown or disabled channel %s", public_id)
        return JsonResponse({"error": "Unknown channel."}, status=404)
    adapter = channel.adapter()
    if Capability.WEBHOOK not in adapter.capabilities:
        return JsonResponse({"error": "This channel does not take webhooks."}, status=404)
    if request.method == "GET":
        return _verify_subscription(channel, adapter, request)
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
        return _refusal(exc)
    stored = store_envelopes(channel, result.envelopes, result.rejected)
    channel.record_push()
    logger.info("channel %s: webhook stored %d of %d", channel.name, stored, len(result.envelopes))
    return _answer(result)


def _verify_subscription(channel, adapter, request):
    """The platform proves the URL is ours before it pushes (Meta's GET with ``hub.challenge``)."""
    try:
        result = adapter.verify_subscription(request.GET)
    except InvalidWebhook as exc:
        logger.warning("channel %s: webhook verification refused (%s): %s", channel.name, exc.status, exc)
        return _refusal(exc)
    Channel.objects.filter(pk=channel.pk).update(webhook_verified_at=timezone.now())
    logger.info("channel %s: webhook verified by the platform", channel.name)
    return _answer(result)


def _refusal(exc: InvalidWebhook):
    response = JsonResponse({"error": str(exc)}, status=exc.status)
    for header, value in exc.headers.items():
        response[header] = value
    return response


def _answer(result):
    if isinstance(result.body, str):
        response = HttpResponse(result.body, status=result.status, content_type="text/plain")
    else:
        response = JsonResponse(result.body, status=result.status)
    for header, value in result.headers.items():
        response[header] = value
    return response
