from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from apikeys.viewsets import ApiViewSet
from merchants.selectors import merchant_rate_limit


class MerchantOutput(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    mode = serializers.CharField(help_text="The calling key's mode.")
    rate_limit_per_minute = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


# /v1/merchant: the calling key's own merchant (a singleton: no id in the URL).
class MerchantViewSet(ApiViewSet):
    @extend_schema(responses={200: MerchantOutput}, summary="The calling key's merchant")
    def retrieve(self, request):
        merchant = request.user.merchant
        data = {
            "id": merchant.id,
            "name": merchant.name,
            "mode": request.user.mode,
            "rate_limit_per_minute": merchant_rate_limit(merchant),
            "created_at": merchant.created_at,
            "updated_at": merchant.updated_at,
        }
        return Response(MerchantOutput(data).data)
