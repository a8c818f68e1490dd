"""`manage.py create_staff --username U --email E --role support|finance|operations|administrator
[--password-stdin]`.

Creates a back-office user with one role (reporting/roles.py), or on a re-run changes its e-mail and role (the
password is kept unless a new one comes on stdin). The password is read from stdin with --password-stdin (first
line); otherwise a new user gets a generated password, printed once on the last line.
"""

import sys

from django.core.management.base import BaseCommand, CommandError

from apikeys.services import Actor
from paytrust.errors import ApplicationError
from reporting.roles import ROLES, staff_save


class Command(BaseCommand):
    help = "Create or update a back-office staff user with one role (support, finance, operations, administrator)."

    def add_arguments(self, parser):
        parser.add_argument("--username", required=True)
        parser.add_argument("--email", required=True)
        parser.add_argument("--role", required=True, choices=list(ROLES))
        parser.add_argument(
            "--password-stdin",
            action="store_true",
            help="Read the password from the first line of stdin (else: generated for a new user, kept otherwise).",
        )

    def handle(self, *args, username, email, role, password_stdin, **options):
        password = None
        if password_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
            if not password:
                raise CommandError("--password-stdin: no password on stdin.")
        try:
            saved = staff_save(
                username=username,
                email=email,
                role=role,
                password=password,
                actor=Actor.for_cli("create_staff"),
            )
        except ApplicationError as exc:
            raise CommandError(f"{exc.param or 'error'}: {exc.message}")
        verb = "Created" if saved.created else "Updated"
        self.stdout.write(f"# {verb} staff user {username!r} with the role {role}.")
        if saved.password is not None:
            self.stdout.write("# The password below is shown only now; store it safely.")
            self.stdout.write(saved.password)
        elif password is None:
            self.stdout.write("# Password unchanged.")
