from rest_framework.routers import SimpleRouter

from gateways.api import GatewayAccountViewSet

router = SimpleRouter(trailing_slash=False, use_regex_path=False)
router.register("gateway-accounts", GatewayAccountViewSet, basename="gateway-account")

urlpatterns = router.urls
