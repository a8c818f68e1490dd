"""OpenAPI description of the API-key authentication (loaded by ApikeysConfig.ready)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "apikeys.authentication.ApiKeyAuthentication"
    name = ["bearerAuth", "apiKeyHeader"]

    def get_security_requirement(self, auto_schema):
        return [{"bearerAuth": []}, {"apiKeyHeader": []}]

    def get_security_definition(self, auto_schema):
        return [
            {
                "type": "http",
                "scheme": "bearer",
                "description": "`Authorization: Bearer pt_test_…` (or pt_live_…). Admin endpoints need the admin scope.",
            },
            {"type": "apiKey", "in": "header", "name": "X-API-Key", "description": "Alternative to Bearer."},
        ]
