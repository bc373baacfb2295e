"""The portal's pages: signing in by a link, the employee's tickets, one ticket's public conversation, a new
request and a reply. Every ticket page and file is found through the signed-in person's own tickets
(``TicketQuerySet.requested_by_any``), and shows only their own conversations (``MessageQuerySet.public_for``):
another person's is a 404, never a 403 that would confirm it exists. A ticket of theirs merged into someone
else's stays theirs: its page shows their conversation where it lives now (``Ticket.conversation_home``)."""

from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Prefetch, Q
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from tickets.attachments import safe_content_type, safe_filename
from tickets.models import Attachment, Contact, Message, Ticket

from . import magic_links
from .access import signed_in_required
from .forms import NewTicketForm, ReplyForm, SignInForm
from .submissions import PortalUnavailable, new_submission_key, report_read, submit_reply, submit_ticket

TICKETS_PER_PAGE = 25


def _sso_url(next_path):
    """The company sign-in (OIDC), when one is configured, leading back to the portal."""
    if not settings.OIDC_ENABLED:
        return None
    return reverse("oidc_authentication_init") + "?" + urlencode({"next": next_path or reverse("portal:tickets")})


@require_http_methods(["GET", "POST"])
def sign_in(request):
    if request.user.is_authenticated:
        return redirect("portal:tickets")
    next_path = magic_links.safe_next(request.POST.get("next") or request.GET.get("next") or "")
    form = SignInForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        magic_links.send_sign_in_link(form.cleaned_data["email"], next_path=next_path)
        return redirect("portal:sign-in-sent")
    return render(request, "portal/sign_in.html", {"form": form, "sso_url": _sso_url(next_path), "next": next_path})


def sign_in_sent(request):
    return render(request, "portal/sign_in_sent.html", {"minutes": magic_links.LINK_SECONDS // 60})


@require_http_methods(["GET", "POST"])
def sign_in_link(request):
    """The link from the email. Opening it asks for a click (a POST) before signing in: mail scanners that
    open links must not use up the single use."""
    token = request.POST.get("token") or request.GET.get("token") or ""
    if request.method == "POST":
        signed_in = magic_links.sign_in(request, token)
        if signed_in is not None:
            return redirect(signed_in.next_path or "portal:tickets")
        return render(request, "portal/link_invalid.html", status=400)
    email = magic_links.address_of(token)
    if email is None:
        return render(request, "portal/link_invalid.html", status=400)
    return render(request, "portal/sign_in_confirm.html", {"token": token, "email": email})


def _own_contacts(request) -> list[int]:
    """The contacts who are the signed-in person, by their email address (looked up once per request)."""
    if not hasattr(request, "_portal_contacts"):
        request._portal_contacts = Contact.objects.ids_with_email(request.user.email)
    return request._portal_contacts


def _own_tickets(request):
    return Ticket.objects.requested_by_any(_own_contacts(request))


def _merged_homes(request) -> dict[int, Ticket]:
    """The tickets the person's merged tickets live in now, by id: {home's id: their own merged ticket}."""
    if not hasattr(request, "_portal_homes"):
        merged = _own_tickets(request).exclude(merged_into=None).select_related("merged_into")
        request._portal_homes = {ticket.conversation_home().pk: ticket for ticket in merged}
    return request._portal_homes


def _readable_messages(request):
    """The public messages of the person's own conversations, in their tickets or where those were merged."""
    homes = Q(ticket__in=_own_tickets(request).filter(merged_into=None).values("pk")) | Q(
        ticket__in=list(_merged_homes(request))
    )
    return Message.objects.filter(homes).public_for(_own_contacts(request))


def _unavailable(request, exc):
    return render(request, "portal/unavailable.html", {"reason": str(exc)}, status=503)


@signed_in_required
def ticket_list(request):
    tickets = _own_tickets(request).select_related("channel", "merged_into").order_by("-last_activity_at", "-id")
    page = Paginator(tickets, TICKETS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "portal/ticket_list.html", {"page": page, "has_email": bool(request.user.email)})


@signed_in_required
@require_http_methods(["GET", "POST"])
def ticket_new(request):
    form = NewTicketForm(request.POST or None, request.FILES or None, initial={"key": new_submission_key()})
    if not request.user.email:  # their tickets could not be found again; the page says why
        return render(request, "portal/ticket_new.html", {"form": form, "has_email": False}, status=403)
    if request.method == "POST" and form.is_valid():
        try:
            submitted = submit_ticket(
                user=request.user,
                key=form.cleaned_data["key"],
                subject=form.cleaned_data["subject"],
                description=form.cleaned_data["description"],
                files=form.cleaned_data["files"],
            )
        except PortalUnavailable as exc:
            return _unavailable(request, exc)
        if submitted.ticket_id is not None:
            if submitted.new:
                messages.success(request, f"Thank you: your request is ticket #{submitted.ticket_id}.")
            return redirect("portal:ticket", submitted.ticket_id)
        messages.success(request, "Thank you: your request was received. It will be listed here in a moment.")
        return redirect("portal:tickets")
    return render(request, "portal/ticket_new.html", {"form": form, "has_email": bool(request.user.email)})


def _ticket_page(request, ticket, form):
    home = ticket.conversation_home()
    conversation = (
        home.messages.public_for(_own_contacts(request))
        .select_related("author_identity", "author_user", "thread__channel")
        .prefetch_related(Prefetch("attachments", queryset=Attachment.objects.order_by("pk")))
        .order_by("created_at", "id")
    )
    report_read(conversation)  # the page is the requester's own: what it shows them, they have read
    context = {"ticket": ticket, "home": home, "conversation": conversation, "form": form}
    return render(request, "portal/ticket_detail.html", context)


@signed_in_required
def ticket_detail(request, pk):
    ticket = _own_tickets(request).select_related("channel", "merged_into").filter(pk=pk).first()
    if ticket is None:
        # Someone else's ticket that theirs was merged into (a reply notice names it): their own page instead.
        merged = _merged_homes(request).get(pk)
        if merged is None:
            raise Http404("No such ticket of yours.")
        return redirect("portal:ticket", merged.pk)
    return _ticket_page(request, ticket, ReplyForm(initial={"key": new_submission_key()}))


@signed_in_required
@require_POST
def ticket_reply(request, pk):
    ticket = get_object_or_404(_own_tickets(request).select_related("requester", "merged_into"), pk=pk)
    form = ReplyForm(request.POST, request.FILES)
    if not form.is_valid():
        return _ticket_page(request, ticket, form)
    try:
        submitted = submit_reply(
            user=request.user,
            ticket=ticket,
            key=form.cleaned_data["key"],
            text=form.cleaned_data["body"],
            files=form.cleaned_data["files"],
        )
    except PortalUnavailable as exc:
        return _unavailable(request, exc)
    if submitted.new:
        if submitted.ticket_id is None:
            messages.success(request, "Your reply was received. It will show here in a moment.")
        else:
            messages.success(request, "Your reply was added.")
    return redirect("portal:ticket", ticket.pk)


@signed_in_required
def attachment_download(request, pk):
    """A file of one of the person's own tickets' public messages, always as a download: never shown as a page
    of this site (nosniff, and a sandbox in case a browser renders it anyway)."""
    attachment = get_object_or_404(
        Attachment, pk=pk, status=Attachment.Status.STORED, message__in=_readable_messages(request).values("pk")
    )
    try:
        handle = attachment.file.open("rb")
    except (OSError, ValueError):
        raise Http404("The file is missing from storage.") from None
    response = FileResponse(
        handle,
        as_attachment=True,
        filename=safe_filename(attachment.name),
        content_type=safe_content_type(attachment.content_type),
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "sandbox; default-src 'none'"
    return response
