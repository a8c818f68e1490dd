"""factory_boy factories. Keys are created through the real service (Argon2id hash), see `make_api_key`."""

import factory

from apikeys.services import Actor, api_key_create
from gateways.models import GatewayAccount, GatewayFee
from merchants.models import Merchant


class MerchantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Merchant

    name = factory.Sequence(lambda n: f"Merchant {n}")


class GatewayAccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = GatewayAccount

    merchant = factory.SubFactory(MerchantFactory)
    mode = "test"
    gateway = "sandbox"
    currencies = factory.LazyFunction(lambda: ["IDR", "MYR", "USD"])
    enabled = True


class GatewayFeeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = GatewayFee

    account = factory.SubFactory(GatewayAccountFactory)
    currency = "IDR"
    percent = 0
    fixed_minor = 0


def make_api_key(merchant=None, *, mode="test", scopes=None, name="test key"):
    """(ApiKey, plaintext) created through the service."""
    merchant = merchant or MerchantFactory()
    return api_key_create(merchant=merchant, mode=mode, actor=Actor.system(), name=name, scopes=scopes or [])
