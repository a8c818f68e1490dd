from django.conf import settings

from merchants.models import Merchant
from paytrust.errors import NotFound


def merchant_rate_limit(merchant: Merchant) -> int:
    """Requests per rolling minute allowed to each of the merchant's API keys."""
    return merchant.rate_limit_per_minute or settings.DEFAULT_RATE_LIMIT_PER_MINUTE


def merchant_get(*, merchant_id: str) -> Merchant:
    merchant = Merchant.objects.filter(pk=merchant_id).first()
    if merchant is None:
        raise NotFound("No such merchant.", param="merchant")
    return merchant
