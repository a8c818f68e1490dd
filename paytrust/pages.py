"""What a browser meets outside the API: a landing page at `/` and redirects for the usual near-misses (`/admin`,
`/docs/`, `/redoc/`), instead of the API's JSON 404. Everything else unknown stays a JSON 404 (the error envelope)."""

from __future__ import annotations

from django.shortcuts import render
from django.views.generic import RedirectView

from paytrust.ops import get_only


@get_only
def landing(request):
    """A small HTML page linking the API docs, the OpenAPI schema, the back office and the health endpoints."""
    return render(request, "landing.html")


def redirect_to(url: str):
    """A temporary (302) redirect keeping the query string: these addresses may become pages of their own."""
    return RedirectView.as_view(url=url, permanent=False, query_string=True)
