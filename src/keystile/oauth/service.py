"""What each grant of the token endpoint earns, through the sign-in flow.

Every credential is checked by :class:`~keystile.flows.sign_in.SignInFlow`
(the same brute-force limits, audit records and single transaction as the
strategy routes); this module only turns its answers into OAuth ones:

- :class:`~keystile.flows.sessions.Authenticated` → a JWT access token signed
  with the asymmetric key of :mod:`.signing` (its ``jti`` is the session
  row's, so revoking the session revokes it), an ID token with scope
  ``openid``, a refresh token with ``offline_access`` (:mod:`.refresh`);
- :class:`~keystile.flows.sign_in.SecondFactorRequired` → the ``mfa_required``
  error carrying the ``mfa_token`` (Auth0's body).

Expected refusals are :class:`~.clients.OAuthError`; the flow's own errors
(``authentication_failed``, ``too_many_attempts`` …) pass through and are
mapped at the edge (:mod:`.answers`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from keystile.clock import Clock
from keystile.flows.sessions import Authenticated
from keystile.flows.sign_in import SecondFactorRequired, SignInFlow
from keystile.jose import sign
from keystile.oauth.clients import ClientRegistry, OAuthError
from keystile.oauth.mfa import MfaApi
from keystile.oauth.refresh import RefreshTokens
from keystile.oauth.requirements import Requirements, acr_of, check_requirements
from keystile.oauth.signing import SigningKeys
from keystile.store.clients import ClientRow
from keystile.strategies.otp.service import OtpService

DEFAULT_SCOPE = "openid"
MAX_SCOPE_LENGTH = 1000


@dataclass(frozen=True, slots=True)
class TokenAnswer:
    """A successful token response (RFC 6749 §5.1), plus Auth0's ``recovery_code``."""

    access_token: str = field(repr=False)
    expires_in: int
    scope: str
    id_token: str | None = field(default=None, repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    recovery_code: str | None = field(default=None, repr=False)

    def body(self) -> dict[str, Any]:
        """The JSON body: only the fields that are set."""
        body: dict[str, Any] = {
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "scope": self.scope,
        }
        for name in ("id_token", "refresh_token", "recovery_code"):
            value = getattr(self, name)
            if value is not None:
                body[name] = value
        return body


def parse_scope(scope: str | None) -> str:
    """The requested scope, normalised (space-separated, no repeats), or the default.

    Raises:
        OAuthError: ``invalid_scope``, a scope too long to be one.
    """
    if scope is None or not scope.strip():
        return DEFAULT_SCOPE
    if len(scope) > MAX_SCOPE_LENGTH:
        raise OAuthError("invalid_scope", "The scope is too long.")
    return " ".join(dict.fromkeys(scope.split()))


def mfa_required(challenge: SecondFactorRequired) -> OAuthError:
    """Auth0's ``mfa_required`` error for a first factor that passed."""
    return OAuthError(
        "mfa_required", "Multifactor authentication required", mfa_token=challenge.mfa_token
    )


class OAuthService:
    """The grants of ``/oauth/token`` and the tokens they earn."""

    def __init__(
        self,
        *,
        sign_in: SignInFlow,
        otp: OtpService | None,
        clients: ClientRegistry,
        signing: SigningKeys,
        refresh: RefreshTokens,
        clock: Clock,
        issuer: str,
        mfa: MfaApi,
    ) -> None:
        self.sign_in = sign_in
        self.mfa = mfa
        self.otp = otp
        self.clients = clients
        self.signing = signing
        self.refresh = refresh
        self._clock = clock
        self.issuer = issuer

    async def answer(
        self,
        client: ClientRow,
        result: Authenticated | SecondFactorRequired,
        *,
        scope: str,
        requirements: Requirements = Requirements(),
    ) -> TokenAnswer:
        """The token response for a sign-in's result.

        Raises:
            OAuthError: ``mfa_required`` (a second factor is owed) or
                ``unmet_authentication_requirements``.
        """
        if isinstance(result, SecondFactorRequired):
            raise mfa_required(result)
        claims = result.claims
        check_requirements(
            requirements, amr=claims.amr, auth_time=claims.auth_time, now=claims.issued_at
        )
        refresh_token = None
        if "offline_access" in scope.split():
            refresh_token = await self.refresh.issue(
                client,
                result.user.id,
                scope=scope,
                sign_in={
                    "strategies": list(claims.strategies),
                    "amr": list(claims.amr),
                    "auth_time": int(claims.auth_time.timestamp()),
                },
                access_jti=claims.jti,
            )
        return await self.tokens(client, result, scope=scope, refresh_token=refresh_token)

    async def tokens(
        self,
        client: ClientRow,
        result: Authenticated,
        *,
        scope: str,
        refresh_token: str | None,
    ) -> TokenAnswer:
        """Sign the access token (and ID token with ``openid``) for ``result``'s session."""
        claims = result.claims
        issued_at = int(claims.issued_at.timestamp())
        lifetime = client.access_token_lifetime
        common: dict[str, Any] = {
            "iss": self.issuer,
            "sub": claims.subject,
            "iat": issued_at,
            "exp": issued_at + lifetime,
            "auth_time": int(claims.auth_time.timestamp()),
            "amr": list(claims.amr),
            "acr": acr_of(claims.amr),
        }
        key = await self.signing.current()
        access = sign(
            {
                **common,
                "aud": client.audience,
                "jti": claims.jti,
                "client_id": client.client_id,
                "scope": scope,
            },
            key,
            media_type="at+jwt",
        )
        id_token = None
        scopes = scope.split()
        if "openid" in scopes:
            identity: dict[str, Any] = {**common, "aud": client.client_id}
            if "email" in scopes:
                identity["email"] = result.user.email
                identity["email_verified"] = True
            id_token = sign(identity, key)
        recovery = result.details.get("recovery_code")
        return TokenAnswer(
            access_token=access,
            expires_in=lifetime,
            scope=scope,
            id_token=id_token,
            refresh_token=refresh_token,
            recovery_code=recovery if isinstance(recovery, str) else None,
        )

    async def refresh_grant(
        self,
        client: ClientRow,
        refresh_token: str,
        *,
        scope: str | None,
        requirements: Requirements = Requirements(),
    ) -> TokenAnswer:
        """Rotate ``refresh_token`` and answer with new tokens carrying the original
        sign-in's ``amr`` and ``auth_time``.

        Raises:
            OAuthError: ``invalid_grant`` (unknown, expired, revoked, another
                client's, or reused: then its whole family is revoked) or
                ``invalid_scope`` (more than the original scope), or
                ``unmet_authentication_requirements`` (the original sign-in is weaker
                than ``acr_values`` or older than ``max_age``: the token stays usable).
        """
        rotated = await self.refresh.rotate(
            client, refresh_token, requested_scope=scope, requirements=requirements
        )
        return await self.tokens(
            client, rotated.authenticated, scope=rotated.scope, refresh_token=rotated.token
        )
