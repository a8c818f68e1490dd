"""Base classes for every authenticated API view: `ApiViewSet` (one per resource, on a DRF router) and `ApiView`.

They live in apikeys (not in paytrust/, which imports no app) because the plumbing is API keys' business.
`ApiView` is where the cross-cutting API behaviour hangs, so every app's views get it by subclassing:
- authentication and permissions (DRF settings: API key, `IsMerchant` by default; set
  `permission_classes = [IsAdminKey]` for admin endpoints);
- per-key rate limiting over a rolling minute (apikeys/ratelimit.py), right after authentication; every response
  to an authenticated request carries X-RateLimit-Limit/-Remaining/-Reset, a 429 also Retry-After;
- `Idempotency-Key` on every POST (apikeys/idempotency.py): claimed after authentication, permissions and rate
  limiting, before the handler runs; the response is stored (2xx/3xx/5xx) or the claim released (4xx).
  A view whose response holds a secret that must never be stored lists it in `idempotency_secret_fields`
  (the replay then returns that field as null);
- the OpenAPI schema class (paytrust/schema.py) that documents the common errors and headers.

Views stay thin: parse with an input serializer, call ONE service, render with an output serializer.
`ApiViewSet` is the same plumbing for a DRF `ViewSet`: one per resource, registered on a router in the app's
urls.py, verbs such as void or replay as `@action`s.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import DatabaseError, transaction
from drf_spectacular.plumbing import get_doc, is_list_serializer
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.viewsets import ViewSetMixin

from apikeys import idempotency
from apikeys.authentication import Principal
from apikeys.permissions import IsMerchant
from apikeys.ratelimit import rate_limit_hit
from apikeys.request_start import ClaimRequest
from merchants.selectors import merchant_rate_limit
from paytrust import metrics
from paytrust.errors import RateLimited, ValidationError
from paytrust.schema import ApiAutoSchema
from paytrust.sql import Cte

logger = logging.getLogger("paytrust.api")

# Bytes: a larger body claims its Idempotency-Key in a statement of its own, after the rate limit's hit.
FUSED_CLAIM_MAX_BODY = 16 * 1024


class _Replay(Exception):  # noqa: N818 - control flow, not an error
    def __init__(self, response) -> None:
        self.response = response


class ApiView(APIView):
    """Authenticated merchant API view: API-key authentication, rate limit, Idempotency-Key, error envelope."""

    schema = ApiAutoSchema()
    # Top-level response fields that are secrets: nulled in the stored copy used for idempotent replays.
    idempotency_secret_fields: tuple[str, ...] = ()

    _rate_limit = None
    _idempotency_claim = None
    _replay_in_statement = None  # the claim whose replay a view put into its effect's statement

    # --- rate limiting: right after authentication, before permissions ------------------------------------
    def perform_authentication(self, request) -> None:
        request.claim_request = self._one_statement_claim(request)
        super().perform_authentication(request)
        principal = request.user
        if isinstance(principal, Principal):
            started = getattr(request, "started", None)
            if started is not None:  # the key lookup made the hit and the claim (apikeys/request_start.py)
                result, self._idempotency_claim = started.result, started.claim
            else:
                result = self._rate_limit_hit(request, principal)
            self._rate_limit = result
            if result is not None and not result.allowed:
                metrics.rate_limited()
                raise RateLimited(
                    f"Too many requests: this API key is limited to {result.limit} requests per rolling "
                    f"minute. Retry after {result.retry_after_seconds} seconds.",
                    headers=result.headers(),
                )

    def _one_statement_claim(self, request) -> ClaimRequest | None:
        """What the authentication needs to make the hit and the claim in its own statement, for a key this
        process has verified (`authentication.authenticate_key`): only where the hit and the claim may share a
        round trip (`_claim_with_hit`) and the permission check cannot refuse an authenticated key (the default
        `IsMerchant` alone), so nothing is claimed for a request refused later; else None."""
        raw = self._idempotency_key(request)
        if raw is None or not self._claim_with_hit(request, raw, check_permissions=False):
            return None
        # IsMerchant admits every authenticated key (tests/apikeys/test_request_start.py pins it): nothing the
        # statement claims can be refused by the permission check afterwards.
        if not all(type(permission) is IsMerchant for permission in self.get_permissions()):
            return None
        return ClaimRequest(key=raw, method=request.method, path=request.get_full_path(), request=request)

    def _rate_limit_hit(self, request, principal: Principal):
        """The rate limit's hit; with the PostgreSQL store, a valid Idempotency-Key, a small body and the
        permission check passing (it is pure Python on the principal, run again by DRF right after), the key's
        claim is tried in the same round trip (`idempotency.hit_and_claim`): the claim still comes after
        authentication, permissions and rate limiting, as ADR 0002 says."""
        limit = merchant_rate_limit(principal.merchant)
        raw = self._idempotency_key(request)
        if raw is None or not self._claim_with_hit(request, raw):
            return rate_limit_hit(bucket=principal.key.id, limit=limit)
        path = request.get_full_path()
        fp = idempotency.fingerprint(method=request.method, path=path, body=request.body)
        try:
            result, self._idempotency_claim = idempotency.hit_and_claim(
                bucket=principal.key.id,
                limit=limit,
                merchant_id=principal.merchant.id,
                mode=principal.mode,
                key=raw,
                method=request.method,
                path=path,
                request_fingerprint=fp,
            )
        except DatabaseError as exc:  # fail open, as rate_limit_hit; idempotency_begin runs later
            logger.error("rate limit store failed; request allowed", extra={"error": repr(exc)})
            metrics.rate_limit_store_error(backend="postgresql")
            return None
        return result

    def _claim_with_hit(self, request, raw_key: str, *, check_permissions: bool = True) -> bool:
        """Whether the hit and the claim can share a round trip: the PostgreSQL store (Redis is another server),
        a key `idempotency_begin` would accept (else its 400 comes after the hit), the permissions granted (a
        refused request claims nothing) and a body small enough that a request the limiter refuses costs little
        to fingerprint (a larger one is fingerprinted only once the hit is allowed, as before)."""
        if not settings.RATE_LIMIT_ENABLED or settings.REDIS_URL:
            return False
        try:
            if int(request.META.get("CONTENT_LENGTH") or 0) > FUSED_CLAIM_MAX_BODY:
                return False
            idempotency.validate_key(raw_key)
        except (ValueError, ValidationError):
            return False
        if not check_permissions:
            return True
        return all(permission.has_permission(request, self) for permission in self.get_permissions())

    # --- idempotency: after authentication, permissions and rate limiting ---------------------------------
    def _idempotency_key(self, request) -> str | None:
        if request.method == "POST" and hasattr(self, "post"):
            return request.headers.get("Idempotency-Key")
        return None

    def initial(self, request, *args, **kwargs) -> None:
        super().initial(request, *args, **kwargs)
        if self._idempotency_claim is None and isinstance(request.user, Principal):
            raw = self._idempotency_key(request)
            if raw is not None:
                self._idempotency_begin(request, raw)

    def _idempotency_begin(self, request, raw_key: str) -> None:
        outcome = idempotency.idempotency_begin(
            merchant_id=request.user.merchant.id,
            mode=request.user.mode,
            key=raw_key,
            method=request.method,
            path=request.get_full_path(),
            body=request.body,
        )
        if isinstance(outcome, idempotency.Claim):
            self._idempotency_claim = outcome
            return
        metrics.idempotent_replay()
        raise _Replay(idempotency.replay_response(outcome))

    def handle_exception(self, exc):
        if isinstance(exc, _Replay):
            return exc.response
        if isinstance(exc, DatabaseError) and idempotency.claim_lost(exc):
            exc = idempotency.claim_lost_error()
        return super().handle_exception(exc)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if self._rate_limit is not None:
            for name, value in self._rate_limit.headers().items():
                response[name] = value
        return response

    def dispatch(self, request, *args, **kwargs):
        self._rate_limit = None
        self._idempotency_claim = None
        self._replay_in_statement = None
        response = super().dispatch(request, *args, **kwargs)
        claim = self._idempotency_claim
        if claim is not None:
            self._idempotency_finish(claim, response)
        return response

    def _idempotency_finish(self, claim: idempotency.Claim, response) -> None:
        try:
            if not idempotency.should_store(response.status_code):
                idempotency.idempotency_release(claim=claim)
                return
            self._idempotency_store(claim, response)
        except Exception:  # the response is sent anyway; the claim goes stale and may be taken over later
            logger.exception("idempotency: could not store the response", extra={"record": claim.record_id})

    def _idempotency_store(self, claim: idempotency.Claim, response) -> None:
        idempotency.idempotency_complete(claim=claim, **self._stored_reply(response))

    def _stored_reply(self, response) -> dict:
        """What is stored of a response for replays: status, replayed headers, body without its secret fields."""
        if hasattr(response, "render") and not getattr(response, "is_rendered", True):
            response.render()
        headers = {name: response[name] for name in idempotency.REPLAY_HEADERS if response.has_header(name)}
        body = idempotency.redact_json(response.content, self.idempotency_secret_fields)
        return {"status": response.status_code, "headers": headers, "body": body}

    def idempotency_replay_cte(self, request, response: Response) -> Cte | None:
        """This request's Idempotency-Key replay of `response`, as a CTE for the statement that makes the effect
        (`paytrust.sql.Cte`; None without a claim, or for a response that is not stored): the effect and its
        replay are then one atomic write, with no window where the effect is committed and a retry with the same
        key finds the claim in progress or, if the process dies, stale and retakeable, and no statement or
        transaction of its own. Rendered here as `finalize_response` would render it (same renderer, media type
        and context). Once that statement ran, return `idempotency_stored(response)`; if it raised, `dispatch`
        releases or completes the claim as for any other response.

            replay = self.idempotency_replay_cte(request, response)
            services.thing_insert(prepared, also=[replay] if replay is not None else [])
            return self.idempotency_stored(response)
        """
        claim = self._idempotency_claim
        if claim is None or not idempotency.should_store(response.status_code):
            return None
        response.accepted_renderer = request.accepted_renderer
        response.accepted_media_type = request.accepted_media_type
        response.renderer_context = self.get_renderer_context()
        self._replay_in_statement = claim
        return idempotency.completion_cte(claim=claim, **self._stored_reply(response))

    def idempotency_stored(self, response: Response) -> Response:
        """After the statement that held `idempotency_replay_cte`'s CTE ran: if it committed (it ran outside any
        transaction block: it was its own transaction), the claim is complete and `dispatch` has nothing left to
        store; inside an outer transaction that may still roll back, `dispatch` stores the response again (the
        same UPDATE) once the view returns, as for any response."""
        if (
            self._replay_in_statement is not None
            and self._idempotency_claim is self._replay_in_statement
            and not transaction.get_connection().in_atomic_block
        ):
            self._idempotency_claim = None
        return response


class ApiViewSetSchema(ApiAutoSchema):
    """`ApiAutoSchema` for a viewset, documenting each action exactly as the same handler on an `ApiView`."""

    def _is_list_view(self, serializer=None) -> bool:
        # drf-spectacular takes a viewset's `list` action for a bare array; our lists are envelopes
        # ({data, has_more, next_cursor}): only a many=True response serializer is an array.
        if serializer is None:
            serializer = self.get_response_serializers()
        if isinstance(serializer, dict) and serializer:
            by_status = {str(code): item for code, item in serializer.items()}
            serializer = by_status[min(by_status)]
        return is_list_serializer(serializer)

    def get_description(self) -> str:
        # The handler's docstring (written for API users), else a plain statement of what every operation shares.
        # Class docstrings (the viewset's, ApiViewSet's, ApiView's, DRF's) document the code, not the API.
        handler = getattr(self.view, getattr(self.view, "action", None) or self.method.lower(), None)
        return get_doc(handler) or API_DESCRIPTION


API_DESCRIPTION = (
    "Authenticated with an API key (`Authorization: Bearer pt_…` or `X-API-Key`); the key's merchant and mode "
    "(test or live) scope every object. Rate-limited per key (X-RateLimit-* headers; 429 with Retry-After). "
    "POSTs take an `Idempotency-Key`. Errors use the common error envelope."
)


class ApiViewSet(ViewSetMixin, ApiView):
    """A resource's API as one viewset (DRF router + `@action`), with all of `ApiView`'s plumbing.

    Route it with `SimpleRouter(trailing_slash=False, use_regex_path=False)` (path converters, as Django's `path`)
    and `lookup_url_kwarg`; where a router cannot express the URL (a singleton such as /v1/merchant, two path
    parameters), map it explicitly: `path("merchant", MerchantViewSet.as_view({"get": "retrieve"}))`.
    Describe a viewset in a comment, not a docstring: DRF answers OPTIONS with the class docstring.
    """

    schema = ApiViewSetSchema()


def tenant(request) -> dict:
    """Filter kwargs that scope a query to the caller's merchant and mode: `Model.objects.filter(**tenant(request))`."""
    return {"merchant": request.user.merchant, "mode": request.user.mode}
