"""`manage.py create_merchant --name NAME [--rate-limit PER_MINUTE]`: the new merchant's id is the last line."""

from django.core.management.base import BaseCommand, CommandError

from apikeys.services import Actor
from gateways.services import merchant_onboard
from paytrust.errors import ApplicationError


class Command(BaseCommand):
    help = "Create a merchant (with its test-mode sandbox gateway account). Prints its id on the last line."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True)
        parser.add_argument(
            "--rate-limit",
            type=int,
            default=None,
            help="Requests per rolling minute per API key (default: setting)",
        )

    def handle(self, *args, name, rate_limit, **options):
        try:
            merchant = merchant_onboard(
                name=name, rate_limit_per_minute=rate_limit, actor=Actor.for_cli("create_merchant")
            )
        except ApplicationError as exc:
            raise CommandError(f"{exc.param or 'error'}: {exc.message}")
        self.stderr.write(f"Created merchant {merchant.name!r}.")
        self.stdout.write(merchant.id)
