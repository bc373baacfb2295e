"""Admins connect, edit, test, enable or disable, and delete channels in the console.

Every change is written to the audit log with credentials redacted (``Channel.audited``); a credential is never
written back into a page (only "set (…abcd)").
"""

from django.contrib import messages
from django.db import transaction
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from channel_adapters.base import AdapterError, Capability, ChannelAdapter
from channels_ingest import health, polling
from channels_ingest.models import Channel, InboundMessage
from channels_ingest.registry import adapter_class
from tickets.audit import SECRET_KEY_WORDS, record_change

from .access import admin_required
from .channel_forms import KIND_LABELS, ChannelForm, offered_kinds
from .channel_views import webhook_url


def answer_in_words(state: dict) -> str:
    """The platform's answer to a credentials check, as facts (who we are there): its plain values only, and never
    one whose name says it is a credential."""
    facts = [
        f"{key}: {value}"
        for key, value in state.items()
        if isinstance(value, str | int | bool) and value != "" and not any(word in key for word in SECRET_KEY_WORDS)
    ]
    return "; ".join(facts)


def _kind_or_404(kind: str) -> str:
    if kind not in dict(offered_kinds()):
        raise Http404("No such kind of channel.")
    return kind


def _configurable_channel(pk) -> Channel:
    """The channel, if the console has a form for its kind and the kind is still configured."""
    channel = get_object_or_404(Channel, pk=pk)
    _kind_or_404(channel.kind)
    return channel


def _connection_check(form: ChannelForm) -> dict:
    """Test the form's credentials against the platform without saving: (ok, words)."""
    channel = Channel(kind=form.kind, config=form.cleaned_config, secrets=form.cleaned_secrets)
    try:
        state = polling.try_credentials(channel)
    except AdapterError as exc:
        return {"ok": False, "words": str(exc)}
    return {"ok": True, "words": answer_in_words(state)}


def _render_form(request, form, *, channel=None, check=None):
    if request.headers.get("HX-Request") and request.POST.get("action") == "test":
        # Only the test's answer is swapped in, so what the admin typed (credentials included) stays in the page.
        if form.errors:
            check = {
                "ok": False,
                "invalid": [
                    (form[key].label if key in form.fields else "", errors) for key, errors in form.errors.items()
                ],
            }
        return render(request, "console/_channel_check.html", {"check": check})
    context = {
        "section": "channels",
        "form": form,
        "kind_label": KIND_LABELS[form.kind],
        "channel": channel,
        "check": check,
    }
    if channel is not None:
        _describe_push(request, channel, context)
    return render(request, "console/channel_form.html", context)


def _describe_push(request, channel, context):
    """The channel's health, by the Channels page's rules, and the webhook URL to paste where the platform pushes."""
    adapter = adapter_class(channel.kind)
    now = timezone.now()
    activity = InboundMessage.objects.filter(channel=channel).activity(now).get(channel.pk, health.Activity())
    context["health"] = health.assess(channel, activity, now, polls=Capability.POLL in adapter.capabilities)
    if Capability.WEBHOOK in adapter.capabilities:
        context["webhook_url"] = webhook_url(request, channel)
        context["verifies_webhook"] = adapter.verify_subscription is not ChannelAdapter.verify_subscription


@admin_required
def channel_kind_choice(request):
    """Which kind of channel to connect."""
    return render(request, "console/channel_kinds.html", {"section": "channels", "kinds": offered_kinds()})


@admin_required
def channel_create(request, kind):
    """GET: the platform's form. POST: test the connection (``action=test``: nothing saved) or connect."""
    kind = _kind_or_404(kind)
    form = ChannelForm(kind, request.POST or None)
    if request.method != "POST" or not form.is_valid():
        return _render_form(request, form)
    if request.POST.get("action") == "test":
        return _render_form(request, form, check=_connection_check(form))
    with transaction.atomic():
        channel = Channel.objects.create(
            kind=kind,
            name=form.cleaned_data["name"],
            config=form.cleaned_config,
            secrets=form.cleaned_secrets,
            poll_interval_seconds=form.cleaned_data.get("poll_interval_seconds") or 0,
        )
        record_change(actor=request.user, action="channel.create", target=channel, before=None, after=channel.audited())
    # Checked once saved, as `manage.py channels add` does, but kept whatever the answer (the platform may only be
    # down): the page then shows it unhealthy, with the platform's words.
    try:
        polling.verify_channel(channel)
    except AdapterError as exc:
        messages.warning(request, f"Channel {channel.name} saved, but the connection test failed: {exc}")
    else:
        messages.success(
            request, f"Channel {channel.name} connected. The platform answered: {answer_in_words(channel.state)}"
        )
    return redirect("console:channel-edit", pk=channel.pk)


@admin_required
def channel_edit(request, pk):
    """GET: the channel's settings (credentials as "set (…abcd)"), webhook URL and buttons. POST: test the typed
    settings (``action=test``) or save them; an empty credential keeps the stored one."""
    channel = _configurable_channel(pk)
    form = ChannelForm(channel.kind, request.POST or None, channel=channel)
    if request.method != "POST" or not form.is_valid():
        return _render_form(request, form, channel=channel)
    if request.POST.get("action") == "test":
        return _render_form(request, form, channel=channel, check=_connection_check(form))
    before = channel.audited()
    channel.name = form.cleaned_data["name"]
    channel.config, channel.secrets = form.cleaned_config, form.cleaned_secrets
    if "poll_interval_seconds" in form.cleaned_data:
        channel.poll_interval_seconds = form.cleaned_data["poll_interval_seconds"]
    with transaction.atomic():
        channel.save(update_fields=["name", "config", "secrets", "poll_interval_seconds"])
        record_change(
            actor=request.user, action="channel.update", target=channel, before=before, after=channel.audited()
        )
    messages.success(request, f"Channel {channel.name} saved.")
    return redirect("console:channel-edit", pk=channel.pk)


@admin_required
@require_POST
def channel_test(request, pk):
    """Check the stored credentials now and keep the result as the channel's health."""
    channel = _configurable_channel(pk)
    try:
        polling.verify_channel(channel)
    except AdapterError as exc:
        messages.error(request, f"Test connection failed: {exc}")
    else:
        messages.success(request, f"Connection works. The platform answered: {answer_in_words(channel.state)}")
    return redirect("console:channel-edit", pk=channel.pk)


@admin_required
@require_POST
def channel_enabled(request, pk):
    """Enable (``enabled=1``) or disable (``enabled=0``) a channel: a disabled one is neither polled nor checked."""
    channel = get_object_or_404(Channel, pk=pk)
    enabled = request.POST.get("enabled") == "1"
    if enabled != channel.enabled:
        before = channel.audited()
        channel.enabled = enabled
        with transaction.atomic():
            channel.save(update_fields=["enabled"])
            action = "channel.enable" if enabled else "channel.disable"
            record_change(actor=request.user, action=action, target=channel, before=before, after=channel.audited())
    messages.success(request, f"Channel {channel.name} {'enabled' if enabled else 'disabled'}.")
    return redirect("console:channels")


@admin_required
def channel_delete(request, pk):
    """GET asks to confirm, saying what goes with the channel; POST deletes."""
    channel = get_object_or_404(Channel, pk=pk)
    if request.method == "POST":
        before = channel.audited()
        with transaction.atomic():
            record_change(actor=request.user, action="channel.delete", target=channel, before=before, after=None)
            channel.delete()
        messages.success(request, f"Channel {channel.name} deleted.")
        return redirect("console:channels")
    context = {
        "section": "channels",
        "channel": channel,
        "inbound_count": channel.inbound.count(),
        "thread_count": channel.threads.count(),
        "ticket_count": channel.tickets.count(),
    }
    return render(request, "console/channel_confirm_delete.html", context)
