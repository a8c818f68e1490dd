from rest_framework.permissions import BasePermission

from apikeys.authentication import Principal


class IsMerchant(BasePermission):
    """Any valid API key."""

    message = "Authentication with an API key is required."

    def has_permission(self, request, view) -> bool:
        return isinstance(request.user, Principal)


class IsAdminKey(BasePermission):
    """A key with the `admin` scope (API-key management, cross-merchant reads)."""

    message = "This endpoint needs an API key with the admin scope."

    def has_permission(self, request, view) -> bool:
        return isinstance(request.user, Principal) and request.user.is_admin
