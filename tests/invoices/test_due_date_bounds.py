from datetime import timedelta

import pytest
from django.utils import timezone

from invoices.models import Invoice


def _body(due_dates):
    return {
        "currency": "IDR",
        "line_items": [{"name": "W", "quantity": 1, "unit_price": "1000"}],
        "installments": {"count": 2, "due_dates": due_dates},
    }


@pytest.mark.django_db
def test_a_due_date_decades_ahead_is_refused(api):
    today = timezone.now().date()
    response = api.post("/v1/invoices", _body([str(today + timedelta(days=2)), "9999-12-31"]), format="json")
    assert response.status_code == 400, response.content
    assert response.json()["error"]["param"] == "installments.due_dates.1"
    assert not Invoice.objects.exists()


@pytest.mark.django_db
def test_a_plan_running_a_few_years_is_accepted(api):
    today = timezone.now().date()
    dates = [str(today + timedelta(days=2)), str(today + timedelta(days=4 * 365))]
    response = api.post("/v1/invoices", _body(dates), format="json")
    assert response.status_code == 201, response.content
    assert [i["due_date"] for i in response.json()["installments"]] == dates
