from django.conf import settings

from merchants.models import Merchant


def merchant_rate_limit(merchant: Merchant) -> int:
    return merchant.rate_limit_per_minute or settings.DEFAULT_RATE_LIMIT_PER_MINUTE
