"""`manage.py seed_demo`: the demo data of `make run`, created only when missing.

Creates the merchant "Demo Store", a test-mode API key for it and a staff superuser `admin`, each printed once.
A key's plaintext (and the generated admin password) can only be shown when it is created: on later runs the
command prints the existing ids and says so; `manage.py create_api_key` makes a new key at any time.
"""

import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from apikeys.models import ApiKey
from apikeys.services import Actor, api_key_create
from gateways.services import merchant_onboard
from merchants.models import Merchant

DEMO_MERCHANT = "Demo Store"
DEMO_KEY_NAME = "demo key"


class Command(BaseCommand):
    help = "Create the demo merchant, test API key and admin user when they are missing."

    def add_arguments(self, parser):
        parser.add_argument("--admin-username", default="admin")

    def handle(self, *args, admin_username, **options):
        actor = Actor.for_cli("seed_demo")
        out = self.stdout.write
        with transaction.atomic():
            merchant = Merchant.objects.filter(name=DEMO_MERCHANT).order_by("created_at").first()
            if merchant is None:
                merchant = merchant_onboard(
                    name=DEMO_MERCHANT, actor=actor, country="ID", legal_name="PT Demo Store"
                )
                out(f"Created merchant {DEMO_MERCHANT!r}: {merchant.id}")
            else:
                out(f"Merchant {DEMO_MERCHANT!r} exists: {merchant.id}")

            key = (
                ApiKey.objects.filter(
                    merchant=merchant,
                    mode="test",
                    name=DEMO_KEY_NAME,
                    revoked_at__isnull=True,
                    expires_at__isnull=True,
                )
                .order_by("created_at")
                .first()
            )
            if key is None:
                key, plaintext = api_key_create(
                    merchant=merchant, mode="test", actor=actor, name=DEMO_KEY_NAME
                )
                out(f"Created test API key {key.id} (shown only now, store it):")
                out(f"API_KEY={plaintext}")
            else:
                out(
                    f"Test API key exists: {key.id} ({key.prefix}_…). Its secret was shown when it was created; "
                    f"for a new one: python manage.py create_api_key --merchant {merchant.id} --mode test"
                )

            User = get_user_model()
            if not User.objects.filter(username=admin_username).exists():
                password = secrets.token_urlsafe(12)
                User.objects.create_superuser(username=admin_username, email="", password=password)
                out(f"Created admin user {admin_username!r} with password: {password}  (shown only now)")
            else:
                out(
                    f"Admin user {admin_username!r} exists (password shown when it was created; "
                    f"`python manage.py changepassword {admin_username}` sets a new one)."
                )
