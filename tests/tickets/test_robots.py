"""Which people are machines, by the address they write from."""

import pytest

from tests.factories import sender
from tickets.models import Identity
from tickets.robots import is_robot


@pytest.mark.parametrize(
    "address",
    [
        "MAILER-DAEMON@mx.example.com",
        "mailer_daemon@example.com",
        "postmaster@example.com",
        "no-reply@shop.example",
        "No.Reply@shop.example",
        "noreply+tracking-88@shop.example",
        "do-not-reply@bank.example",
        "donotreply@bank.example",
    ],
)
def test_robot_addresses(address):
    assert is_robot(Identity(namespace="email", external_id=address.lower(), email=address))
    assert is_robot(Identity(namespace="email", external_id=address.lower()))


@pytest.mark.parametrize(
    "address",
    ["reply@example.com", "noreplyguy@example.com", "ann@no-reply.example", "post.master.chef@example.com", ""],
)
def test_people_addresses(address):
    assert not is_robot(Identity(namespace="email", external_id=address, email=address))


def test_someone_known_by_a_platform_id_alone_is_a_person():
    assert not is_robot(sender("noreply"))
