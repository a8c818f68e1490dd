"""Django's browser middleware (sessions, CSRF, auth, messages, X-Frame-Options) serves the browser pages and is
passed through for the JSON API under /v1/ (paytrust/middleware.py)."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

pytestmark = pytest.mark.django_db


def test_the_admin_still_refuses_a_post_without_its_csrf_token():
    get_user_model().objects.create_superuser("root", "root@example.com", "a-long-password-1")
    browser = Client(enforce_csrf_checks=True)
    page = browser.get("/admin/login/")
    assert page.status_code == 200
    assert page["X-Frame-Options"] == "DENY"
    assert "csrftoken" in page.cookies
    refused = browser.post("/admin/login/", {"username": "root", "password": "a-long-password-1"})
    assert refused.status_code == 403
    assert "_auth_user_id" not in browser.session
    token = page.cookies["csrftoken"].value
    accepted = browser.post(
        "/admin/login/?next=/admin/",
        {"username": "root", "password": "a-long-password-1", "csrfmiddlewaretoken": token},
    )
    assert accepted.status_code == 302 and accepted["Location"] == "/admin/"
    assert browser.get("/admin/").status_code == 200  # the session user, from the session cookie


def test_the_session_csrf_auth_and_messages_middleware_pass_the_api_through():
    from django.http import HttpResponse
    from django.test import RequestFactory

    from paytrust.middleware import (
        AuthenticationMiddleware,
        CsrfViewMiddleware,
        MessageMiddleware,
        SessionMiddleware,
    )

    seen = {}

    def view(request):
        seen[request.path] = {name: hasattr(request, name) for name in ("session", "user", "_messages")}
        return HttpResponse("ok")

    chain = SessionMiddleware(AuthenticationMiddleware(MessageMiddleware(view)))
    for path in ("/v1/invoices", "/admin/login/"):
        chain(RequestFactory().get(path))
    assert seen["/v1/invoices"] == {"session": False, "user": False, "_messages": False}
    assert seen["/admin/login/"] == {"session": True, "user": True, "_messages": True}
    csrf = CsrfViewMiddleware(view)
    post = RequestFactory().post("/v1/anything", {})
    assert csrf.process_view(post, view, (), {}) is None  # not checked under /v1/ (API-key authenticated)
    admin_post = RequestFactory().post("/admin/login/", {})
    assert csrf.process_view(admin_post, view, (), {}).status_code == 403


def test_api_responses_keep_x_frame_options(api):
    response = api.get("/v1/merchant")
    assert response.status_code == 200
    assert response["X-Frame-Options"] == "DENY"  # the gateway return pages under /v1/ are HTML
    assert not response.cookies
