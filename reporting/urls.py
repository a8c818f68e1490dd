from rest_framework.routers import SimpleRouter

from reporting.api import ReportViewSet

router = SimpleRouter(trailing_slash=False, use_regex_path=False)
router.register("reports", ReportViewSet, basename="reports")

urlpatterns = router.urls
