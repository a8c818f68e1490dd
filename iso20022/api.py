"""GET /v1/invoices/{id}/payment-initiation (pain.001) and /payment-status (pain.002), as application/xml.

Errors stay JSON (the spec's envelope): the views always negotiate the JSON renderer, and the XML body of a
success is returned as a plain HttpResponse that no renderer touches.
"""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.decorators import action
from rest_framework.negotiation import BaseContentNegotiation

from apikeys.viewsets import ApiViewSet, tenant
from paytrust.errors import ValidationError
from paytrust.renderers import JSONRenderer
from paytrust.schema import error_responses

from . import exports
from .types import PAIN001_V03, PAIN001_V09, PAIN002_V03, PAIN002_V10

XML = "application/xml"
# ?version= takes exactly the documented values (the OpenAPI enum).
PAIN001_VERSIONS = {"09": PAIN001_V09, "03": PAIN001_V03}
PAIN002_VERSIONS = {"10": PAIN002_V10, "03": PAIN002_V03}


class _JsonErrors(BaseContentNegotiation):
    """Success bodies are XML HttpResponses; anything rendered by DRF is an error envelope, always JSON."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return JSONRenderer(), JSONRenderer.media_type


def _version(request, versions: dict[str, str], default: str) -> str:
    raw = request.query_params.get("version")
    if raw is None:
        return versions[default]
    if raw not in versions:
        raise ValidationError(
            f"Unknown version {raw[:20]!r}; use one of: {', '.join(sorted(versions))}.",
            code="parameter_invalid",
            param="version",
        )
    return versions[raw]


def _xml(document: bytes, *, invoice_id: str, message: str) -> HttpResponse:
    response = HttpResponse(document, content_type=f"{XML}; charset=utf-8")
    response["Content-Disposition"] = f'inline; filename="{invoice_id}.{message}.xml"'
    return response


# /v1/invoices/{invoice_id}/payment-initiation and /payment-status: an invoice as ISO 20022 messages.
class InvoiceIso20022ViewSet(ApiViewSet):
    content_negotiation_class = _JsonErrors
    lookup_url_kwarg = "invoice_id"

    @extend_schema(
        operation_id="invoice_payment_initiation",
        summary="ISO 20022 payment initiation (pain.001) for an invoice",
        description=(
            "A pain.001.001.09 customer credit transfer initiation (`?version=03`: pain.001.001.03): debtor = the "
            "invoice's customer, creditor = the merchant's creditor profile, one credit transfer per installment "
            "(EndToEndId `{invoice id}-{installment number}`, requested execution date = due date), amounts with "
            "the currency's decimals, CtrlSum = the invoice total. The same content always gives the same MsgId. "
            "Validated against the official XSD before it is sent."
        ),
        parameters=[
            OpenApiParameter(
                "version",
                OpenApiTypes.STR,
                OpenApiParameter.QUERY,
                required=False,
                enum=["09", "03"],
                description="Message version: `09` (pain.001.001.09, default) or `03` (pain.001.001.03).",
            )
        ],
        responses={
            (200, XML): OpenApiResponse(response=OpenApiTypes.STR, description="The pain.001 XML document."),
            **error_responses(404),
        },
        tags=["invoices"],
    )
    @action(detail=True, methods=["get"], url_path="payment-initiation")
    def payment_initiation(self, request, invoice_id: str):
        message = _version(request, PAIN001_VERSIONS, "09")
        document = exports.invoice_payment_initiation(
            **tenant(request), invoice_id=invoice_id, message=message
        )
        return _xml(document, invoice_id=invoice_id, message=message)

    @extend_schema(
        operation_id="invoice_payment_status",
        summary="ISO 20022 payment status report (pain.002) for an invoice",
        description=(
            "A pain.002.001.10 customer payment status report (`?version=03`: pain.002.001.03) on the invoice's "
            "pain.001.001.09: one transaction status per installment (ACSC settled, ACSP in process or partly "
            "paid, PDNG pending, RJCT rejected with a reason code), the payment-information and group statuses "
            "(PART when partly settled) and the number of transactions per status. An invoice without payments "
            "reports PDNG."
        ),
        parameters=[
            OpenApiParameter(
                "version",
                OpenApiTypes.STR,
                OpenApiParameter.QUERY,
                required=False,
                enum=["10", "03"],
                description="Message version: `10` (pain.002.001.10, default) or `03` (pain.002.001.03).",
            )
        ],
        responses={
            (200, XML): OpenApiResponse(response=OpenApiTypes.STR, description="The pain.002 XML document."),
            **error_responses(404),
        },
        tags=["invoices"],
    )
    @action(detail=True, methods=["get"], url_path="payment-status")
    def payment_status(self, request, invoice_id: str):
        message = _version(request, PAIN002_VERSIONS, "10")
        document = exports.invoice_payment_status(**tenant(request), invoice_id=invoice_id, message=message)
        return _xml(document, invoice_id=invoice_id, message=message)
