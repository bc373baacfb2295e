"""The audit log page: every configuration change, newest first, for admins."""

from django.core.paginator import Paginator
from django.shortcuts import render

from tickets.models import AuditEntry

from .access import admin_required

PAGE_SIZE = 50


@admin_required
def audit_log(request):
    entries = AuditEntry.objects.select_related("actor")
    target_type = request.GET.get("type", "")
    if target_type:
        entries = entries.filter(target_type=target_type)
    page = Paginator(entries, PAGE_SIZE).get_page(request.GET.get("page"))
    types = AuditEntry.objects.order_by("target_type").values_list("target_type", flat=True).distinct()
    context = {"section": "audit", "page": page, "types": types, "target_type": target_type}
    return render(request, "console/audit_log.html", context)
