"""Words for employees: a ticket's status as the person who asked reads it."""

from django import template

from tickets.models import Ticket

register = template.Library()

_STATUS = {
    Ticket.Status.NEW: "Received",
    Ticket.Status.OPEN: "In progress",
    Ticket.Status.PENDING: "Waiting for your reply",
    Ticket.Status.RESOLVED: "Resolved",
    Ticket.Status.CLOSED: "Closed",
}


@register.filter
def status_for_requester(status: str) -> str:
    return _STATUS.get(status, status)
