"""`manage.py create_api_key --merchant MER_ID --mode test|live [--scope admin] [--name NAME]`.

The plaintext key is printed ALONE on the last line of stdout, once: only its Argon2id hash is stored.
"""

from django.core.management.base import BaseCommand, CommandError

from apikeys.models import Scope
from apikeys.services import Actor, api_key_create
from merchants.models import Merchant
from paytrust.errors import ApplicationError
from paytrust.models import Mode


class Command(BaseCommand):
    help = "Create an API key. Prints the key id, then the plaintext key alone on the last line (shown once)."

    def add_arguments(self, parser):
        parser.add_argument("--merchant", required=True, help="Merchant id (mer_…)")
        parser.add_argument("--mode", required=True, choices=Mode.values)
        parser.add_argument(
            "--scope",
            action="append",
            default=[],
            choices=Scope.values,
            help="Repeatable; e.g. --scope admin",
        )
        parser.add_argument("--name", default="")

    def handle(self, *args, merchant, mode, scope, name, **options):
        merchant_obj = Merchant.objects.filter(pk=merchant).first()
        if merchant_obj is None:
            raise CommandError(f"No merchant with id {merchant!r}.")
        try:
            key, plaintext = api_key_create(
                merchant=merchant_obj,
                mode=mode,
                actor=Actor.for_cli("create_api_key"),
                name=name,
                scopes=scope,
            )
        except ApplicationError as exc:
            raise CommandError(f"{exc.param or 'error'}: {exc.message}")
        self.stdout.write(f"# API key {key.id} ({key.mode}, scopes: {', '.join(key.scopes) or 'none'})")
        self.stdout.write("# The key below is shown only now; store it safely.")
        self.stdout.write(plaintext)
