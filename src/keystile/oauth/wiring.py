"""Building the OAuth services of one deployment (called by the composition root)."""

from __future__ import annotations

from keystile.clock import Clock
from keystile.flows.mfa_tokens import MfaTokens
from keystile.flows.sessions import Sessions
from keystile.flows.sign_in import SignInFlow
from keystile.oauth.clients import ClientRegistry
from keystile.oauth.mfa import MfaApi
from keystile.oauth.refresh import RefreshTokens
from keystile.oauth.service import OAuthService
from keystile.oauth.signing import SigningKeys
from keystile.settings import Settings
from keystile.store.database import Database
from keystile.strategies.otp.service import OtpService
from keystile.strategies.recovery_code.service import RecoveryCodeService
from keystile.strategies.totp.enrolment import TotpEnrolment


def build_oauth(
    settings: Settings,
    *,
    db: Database,
    clock: Clock,
    sessions: Sessions,
    sign_in: SignInFlow,
    mfa_tokens: MfaTokens,
    otp: OtpService | None,
    totp_enrolment: TotpEnrolment | None,
    recovery: RecoveryCodeService | None = None,
) -> tuple[OAuthService, MfaApi]:
    """The token endpoint's service and the MFA API's, sharing one client registry,
    one set of signing keys and the deployment's key rings."""
    hashing_keys = settings.ring("hashing_keys")
    encryption_keys = settings.ring("encryption_keys")
    clients = ClientRegistry(
        db=db,
        hashing_keys=hashing_keys,
        clock=clock,
        audience=settings.token_audience,
        access_token_lifetime=settings.oauth_access_token_lifetime_seconds,
        refresh_token_lifetime=settings.oauth_refresh_token_lifetime_seconds,
    )
    signing = SigningKeys(
        db=db,
        encryption_keys=encryption_keys,
        algorithm=settings.oauth_signing_algorithm,
        clock=clock,
    )
    refresh = RefreshTokens(db=db, sessions=sessions, hashing_keys=hashing_keys, clock=clock)
    mfa = MfaApi(
        db=db,
        mfa_tokens=mfa_tokens,
        clock=clock,
        hashing_keys=hashing_keys,
        encryption_keys=encryption_keys,
        totp_enrolment=totp_enrolment,
        recovery_codes_enabled=settings.recovery_codes_enabled,
        recovery=recovery,
        signing=signing,
        issuer=settings.issuer,
        audience=settings.token_audience,
    )
    service = OAuthService(
        sign_in=sign_in,
        otp=otp,
        clients=clients,
        signing=signing,
        refresh=refresh,
        clock=clock,
        issuer=settings.issuer,
        mfa=mfa,
    )
    return service, mfa
