"""Public (unauthenticated) sandbox checkout pages: /sandbox/checkout/{token}."""

urlpatterns: list = []
