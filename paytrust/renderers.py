"""The API's JSON renderer: DRF's `JSONRenderer`, encoding with orjson (paytrust.jsonenc, ADR 0058).

The same JSON values as DRF's renderer with the project's settings (UNICODE_JSON, COMPACT_JSON, STRICT_JSON at
their defaults): compact, non-ASCII as UTF-8, U+2028/U+2029 escaped, DRF's `JSONEncoder.default` for datetimes
(ISO 8601, milliseconds, "Z"), decimals, UUIDs, lazy strings, bytes, querysets and generators. An indented
rendering (`Accept: application/json; indent=4`, the browsable API) and anything orjson cannot encode alike are
DRF's own `render`.
"""

from rest_framework import renderers
from rest_framework.utils.encoders import JSONEncoder

from paytrust import jsonenc

_DRF_DEFAULT = JSONEncoder().default


class JSONRenderer(renderers.JSONRenderer):
    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None:
            return b""
        if not (self.compact and not self.ensure_ascii and self.strict) or (
            self.get_indent(accepted_media_type, renderer_context or {}) is not None
        ):
            return super().render(data, accepted_media_type, renderer_context)
        return jsonenc.dumps(
            data,
            default=_DRF_DEFAULT,
            fallback=lambda value: super(JSONRenderer, self).render(
                value, accepted_media_type, renderer_context
            ),
        )
