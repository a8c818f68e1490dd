"""Test-only URLconf: the real URLs plus views that fail or block on purpose.

Use with `@pytest.mark.urls("tests.ops.urls")`.
"""

import threading

from django.db import OperationalError
from django.http import HttpResponse
from django.urls import include, path
from rest_framework import serializers
from rest_framework.response import Response

from apikeys.viewsets import ApiView
from paytrust.errors import Conflict
from paytrust.serializers import MetadataField, StrictSerializer

# Work counters and gates the tests inspect and control.
calls = {"work": 0, "crash": 0}
gate = threading.Event()
entered = threading.Event()


class Nested(StrictSerializer):
    amount = serializers.DecimalField(max_digits=12, decimal_places=2)


class EchoInput(StrictSerializer):
    name = serializers.CharField(max_length=10)
    metadata = MetadataField(required=False)
    items = Nested(many=True, required=False)


class WorkApi(ApiView):
    """POST does 'work' (counts it) and returns 201; validation happens before the work."""

    def post(self, request):
        data = EchoInput(data=request.data)
        data.is_valid(raise_exception=True)
        calls["work"] += 1
        return Response({"work": calls["work"], "name": data.validated_data["name"]}, status=201)


class SlowWorkApi(ApiView):
    """POST blocks until the test opens `gate` (a request still running)."""

    def post(self, request):
        calls["work"] += 1
        entered.set()
        gate.wait(timeout=30)
        return Response({"work": calls["work"]}, status=201)


class ConflictApi(ApiView):
    def post(self, request):
        calls["work"] += 1
        raise Conflict("The invoice is already paid.", code="invoice_paid")


class CrashApi(ApiView):
    def get(self, request):
        raise RuntimeError("boom: SELECT secret FROM table /srv/app/secret.py line 3")

    def post(self, request):
        calls["crash"] += 1
        raise RuntimeError("boom in the middle of the work")


class DatabaseGoneApi(ApiView):
    def get(self, request):
        raise OperationalError("connection to server at 127.0.0.1 failed: Connection refused")

    def post(self, request):
        """The first call finds the database gone (503); the next one works (201)."""
        calls["database_gone"] = calls.get("database_gone", 0) + 1
        if calls["database_gone"] == 1:
            raise OperationalError("server closed the connection unexpectedly")
        return Response({"work": calls["database_gone"]}, status=201)


def plain_database_gone(request):
    raise OperationalError("server closed the connection unexpectedly")


def plain_crash(request):
    raise RuntimeError("plain django view exploded with password=hunter2")


def plain_ok(request):
    return HttpResponse("ok")


urlpatterns = [
    path("test/work", WorkApi.as_view()),
    path("test/slow", SlowWorkApi.as_view()),
    path("test/conflict", ConflictApi.as_view()),
    path("test/crash", CrashApi.as_view()),
    path("test/plain-crash", plain_crash),
    path("test/database-gone", DatabaseGoneApi.as_view()),
    path("test/plain-database-gone", plain_database_gone),
    path("test/plain", plain_ok),
    path("", include("paytrust.urls")),
]
handler400 = "paytrust.errors.handler400"
handler403 = "paytrust.errors.handler403"
handler404 = "paytrust.errors.handler404"
handler500 = "paytrust.errors.handler500"
