"""Public (unauthenticated) bank-transfer instructions pages: /bank-transfer/{token}."""

from django.urls import path

from gateways.manual.page import instructions

urlpatterns: list = [path("<str:token>", instructions, name="manual-instructions")]
