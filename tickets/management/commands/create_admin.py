"""``manage.py create_admin USERNAME --email EMAIL``: the first admin of a new desk (or another one).

The password is never an argument (it would stay in the shell's history and show in ``ps``): it is asked for
twice at a terminal, or read from ``--password-file`` (``-`` for standard input, for scripts).
"""

import getpass
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from tickets.staff import StaffError, create_admin


class Command(BaseCommand):
    help = "Create an admin (in the admins group) who signs in to the console with a password."

    def add_arguments(self, parser):
        # "--password secret" must not pass as an abbreviation of --password-file.
        parser.allow_abbrev = False
        parser.add_argument("username")
        parser.add_argument("--email", required=True)
        parser.add_argument(
            "--password-file",
            help="Read the password from this file's first line; - reads it from standard input. Without it, the "
            "password is asked for at the terminal.",
        )

    def handle(self, *args, username, email, password_file, **options):
        password = self._password(password_file)
        try:
            user = create_admin(username=username, email=email, password=password, actor_label="manage.py create_admin")
        except StaffError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"Created admin {user.get_username()}: sign in to the console with this password.")

    def _password(self, password_file):
        if password_file == "-":  # noqa: S105 - the name for standard input, not a password
            return self._first_line(sys.stdin.read())
        if password_file:
            try:
                return self._first_line(Path(password_file).read_text())
            except OSError as exc:
                raise CommandError(f"Cannot read the password file: {exc.strerror}: {password_file}") from None
        if not sys.stdin.isatty():
            raise CommandError("Not at a terminal: give the password with --password-file FILE (or - for stdin).")
        password = getpass.getpass("Password: ")
        if password != getpass.getpass("Password (again): "):
            raise CommandError("The two passwords differ.")
        return password

    @staticmethod
    def _first_line(text):
        password = text.splitlines()[0] if text else ""
        if not password:
            raise CommandError("The password is empty.")
        return password
