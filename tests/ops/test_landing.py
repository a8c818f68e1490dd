"""`/`, `/admin` and `/docs/` answer a person's browser with a page or a redirect, not the API's JSON 404."""

import re

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_root_is_an_html_landing_page_linking_docs_schema_admin_and_health():
    response = Client().get("/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    links = set(re.findall(r'href="([^"]+)"', response.content.decode()))
    assert {"/docs", "/redoc", "/v1/schema", "/admin/", "/healthz", "/readyz", "/metrics"} <= links
    for link in sorted(links):  # every link on the page leads somewhere
        assert Client().get(link).status_code in (200, 302), link


def test_root_answers_head_and_refuses_post_with_the_error_envelope():
    assert Client().head("/").status_code == 200
    response = Client().post("/")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


@pytest.mark.parametrize(
    ("path", "target"),
    [("/admin", "/admin/"), ("/docs/", "/docs"), ("/redoc/", "/redoc"), ("/docs/?x=1", "/docs?x=1")],
)
def test_near_misses_redirect(path, target):
    response = Client().get(path)
    assert response.status_code == 302
    assert response["Location"] == target


def test_admin_without_slash_ends_on_the_login_page():
    response = Client().get("/admin", follow=True)
    assert response.status_code == 200
    assert response.redirect_chain[0] == ("/admin/", 302)
    assert "/admin/login/" in response.redirect_chain[-1][0]


def test_other_unknown_paths_are_still_the_json_404():
    response = Client().get("/nothing-here")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "resource_missing"
