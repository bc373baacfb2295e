"""``manage.py create_admin``: the first admin, with a password never given on the command line."""

import io

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from tickets.roles import Role, role_of

pytestmark = pytest.mark.django_db


def create(*args):
    out = io.StringIO()
    call_command("create_admin", *args, stdout=out)
    return out.getvalue()


def test_the_password_comes_from_a_file(tmp_path):
    secret = tmp_path / "password"
    secret.write_text("a long pass phrase\n")
    output = create("ada", "--email", "ada@example.com", "--password-file", str(secret))
    assert "Created admin ada" in output
    ada = User.objects.get(username="ada")
    assert ada.check_password("a long pass phrase")
    assert role_of(ada) == Role.ADMIN
    assert not ada.is_superuser


def test_the_password_comes_from_standard_input(monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("a long pass phrase\n"))
    create("ada", "--email", "ada@example.com", "--password-file", "-")
    assert User.objects.get(username="ada").check_password("a long pass phrase")


def test_at_a_terminal_the_password_is_asked_twice(monkeypatch):
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    answers = iter(["a long pass phrase", "a long pass phrase"])
    monkeypatch.setattr("getpass.getpass", lambda prompt: next(answers))
    create("ada", "--email", "ada@example.com")
    assert User.objects.get(username="ada").check_password("a long pass phrase")


def test_two_different_answers_create_nobody(monkeypatch):
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    answers = iter(["a long pass phrase", "another pass phrase"])
    monkeypatch.setattr("getpass.getpass", lambda prompt: next(answers))
    with pytest.raises(CommandError, match="differ"):
        create("ada", "--email", "ada@example.com")
    assert not User.objects.exists()


def test_without_a_terminal_or_a_file_it_says_how_to_give_the_password(monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    with pytest.raises(CommandError, match="--password-file"):
        create("ada", "--email", "ada@example.com")


@pytest.mark.parametrize(
    ("content", "error"),
    [("", "The password is empty"), ("short\n", "too short"), ("password123\n", "too common")],
)
def test_a_weak_or_empty_password_creates_nobody(tmp_path, content, error):
    secret = tmp_path / "password"
    secret.write_text(content)
    with pytest.raises(CommandError, match=error):
        create("ada", "--email", "ada@example.com", "--password-file", str(secret))
    assert not User.objects.exists()


def test_a_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(CommandError, match="Cannot read the password file"):
        create("ada", "--email", "ada@example.com", "--password-file", str(tmp_path / "nope"))


def test_the_password_is_not_an_argument():
    with pytest.raises(CommandError, match="unrecognized arguments"):
        create("ada", "--email", "ada@example.com", "--password", "a long pass phrase")
