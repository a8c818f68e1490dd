"""Factories for the outbound webhooks tests. Endpoints get a real encrypted `whsec_` secret."""

import factory

from tests.factories import MerchantFactory
from webhooks.outbound import signing
from webhooks.outbound.models import WebhookEndpoint


class WebhookEndpointFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WebhookEndpoint

    merchant = factory.SubFactory(MerchantFactory)
    mode = "test"
    url = "http://127.0.0.1:9/hook"
    enabled_events = factory.LazyFunction(lambda: ["*"])
    enabled = True

    class Params:
        secret = factory.LazyFunction(signing.secret_generate)

    secret_encrypted = factory.LazyAttribute(lambda o: signing.secret_encrypt(o.secret))
