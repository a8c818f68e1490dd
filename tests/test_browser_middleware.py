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


def test_the_api_gets_no_session_csrf_or_frame_middleware(api):
    response = api.get("/v1/merchant")
    assert response.status_code == 200
    assert not response.cookies
    assert (
        "X-Frame-Options" not in response
    )  # Django's clickjacking middleware sets it on every response it sees
    # A session cookie sent to the API is ignored: the API key alone decides.
    api.cookies["sessionid"] = "whatever"
    assert api.get("/v1/merchant").status_code == 200
