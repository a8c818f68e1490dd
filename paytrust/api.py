"""Base class for every authenticated API view.

`ApiView` is where the cross-cutting API behaviour hangs: authentication (DRF settings), per-key rate limiting
with the X-RateLimit-* headers, and Idempotency-Key handling for POST. Views subclass it and stay thin:
parse with an input serializer, call ONE service, render with an output serializer.
"""

from rest_framework.views import APIView


class ApiView(APIView):
    """Authenticated merchant API view. Unknown JSON fields are rejected by `paytrust.serializers.StrictSerializer`."""


def tenant(request) -> dict:
    """Filter kwargs that scope a query to the caller's merchant and mode: `Model.objects.filter(**tenant(request))`."""
    return {"merchant": request.user.merchant, "mode": request.user.mode}
