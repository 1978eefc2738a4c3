"""JWT bearer tokens of an OAuth 2 / OIDC issuer, verified with PyJWT against the issuer's JWKS:
signature (keys fetched and refreshed when a new `kid` appears: key rotation), issuer, audience,
expiry and not-before with a clock-skew leeway (docs/security.md, "JWTs")."""

from __future__ import annotations

from typing import Any

import jwt
from jwt import PyJWKClient

from provtrack.domain.access import SCOPES, Principal, Unauthenticated
from provtrack.settings import Settings


class JwtVerifier:
    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        jwks_url: str,
        algorithms: tuple[str, ...] = ("RS256", "ES256"),
        leeway_seconds: float = 60,
        client_claim: str = "client_id",
        refetch_cooldown_seconds: float = 30,
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self.algorithms = list(algorithms)
        self.leeway = leeway_seconds
        self.client_claim = client_claim
        # Keys are cached; a token signed with a key the cache lacks (rotation) fetches the set
        # again, at most once per cooldown (a flood of made-up `kid`s costs one fetch).
        self.keys = PyJWKClient(
            jwks_url, cache_keys=True, lifespan=300, timeout=10, cooldown_duration=refetch_cooldown_seconds
        )

    def verify(self, token: str) -> Principal:
        try:
            key = self.keys.get_signing_key_from_jwt(token)
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=self.algorithms,
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("the token has expired", error="invalid_token") from None
        except jwt.PyJWKClientConnectionError:
            raise Unauthenticated("the issuer's keys could not be fetched", error="invalid_token") from None
        except (jwt.PyJWKClientError, jwt.InvalidTokenError) as exc:
            raise Unauthenticated(f"the token was refused: {str(exc)[:200]}", error="invalid_token") from None
        client = claims.get(self.client_claim) or claims.get("azp") or claims.get("sub")
        if not isinstance(client, str) or not client:
            raise Unauthenticated(f"the token names no client ({self.client_claim})", error="invalid_token")
        return Principal(client, _scopes(claims), via=f"jwt of {self.issuer}")


def _scopes(claims: dict[str, Any]) -> frozenset[str]:
    """`scope` (a space-separated string, RFC 8693) or `scp` (a list); scopes that are not
    provtrack's (openid, profile...) are left out."""
    raw = claims.get("scope", claims.get("scp", ""))
    parts = raw.split() if isinstance(raw, str) else [p for p in raw if isinstance(p, str)]
    return frozenset(p for p in parts if p in SCOPES)


def jwt_verifier(settings: Settings) -> JwtVerifier | None:
    """The verifier the settings configure, or None (API keys only)."""
    if not settings.jwt_issuer:
        return None
    if not settings.jwt_jwks_url:
        raise ValueError("PROVTRACK_JWT_JWKS_URL is required with PROVTRACK_JWT_ISSUER")
    return JwtVerifier(
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        jwks_url=settings.jwt_jwks_url,
        algorithms=tuple(a.strip() for a in settings.jwt_algorithms.split(",") if a.strip()),
        leeway_seconds=settings.jwt_leeway_seconds,
        client_claim=settings.jwt_client_claim,
    )
