"""Auth0's MFA API behind ``/mfa/*``: what a sign-in held for a second factor may do.

The ``mfa_token`` of an ``mfa_required`` answer is the caller's only proof for
listing authenticators, asking for a challenge and associating (enrolling) an
authenticator; removing one needs an access token of this service whose
sign-in passed a second factor within
:data:`~keystile.strategies.totp.enrolment.RECENT_SECOND_FACTOR`.

Associating starts a TOTP setup (:meth:`TotpEnrolment.setup
<keystile.strategies.totp.enrolment.TotpEnrolment.setup>`) for the user the MFA
token names, when that token was issued for enrolment (method ``totp_setup``:
the ``required`` MFA policy). Auth0's clients never see a setup token, so it
is kept here, sealed, in a token row found by the MFA token's keyed hash, for
the ``mfa-otp`` grant that confirms the setup (:meth:`MfaApi.setup_token_for`).
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass, field
from datetime import datetime

import jwt

from keystile.clock import Clock
from keystile.crypto.hashing import keyed_hash, keyed_hashes
from keystile.crypto.keyring import KeyRing
from keystile.crypto.sealing import UnsealError, seal, unseal
from keystile.errors import InsufficientAuthenticationError, NotFoundError, UnauthenticatedError
from keystile.flows.mfa_tokens import MfaTokens, PendingSignIn
from keystile.jose import verify
from keystile.oauth.clients import OAuthError
from keystile.oauth.signing import SigningKeys
from keystile.store import recovery_codes, tokens, users
from keystile.store import totp as authenticators
from keystile.store.database import Database
from keystile.store.locks import lock_identity
from keystile.store.prepared import Executor
from keystile.store.tokens import TokenStore
from keystile.store.users import User
from keystile.strategies.recovery_code.service import RecoveryCodeService
from keystile.strategies.totp.enrolment import RECENT_SECOND_FACTOR, TotpEnrolment
from keystile.tokens import AMR_MFA

SETUP_PURPOSE = "oauth_mfa_setup"
RECOVERY_CODE_ID = "recovery-code|default"


@dataclass(frozen=True, slots=True)
class Authenticator:
    """One of Auth0's authenticator entries: ``otp`` or ``recovery-code``."""

    id: str
    authenticator_type: str
    active: bool


@dataclass(frozen=True, slots=True)
class Association:
    """An OTP authenticator being associated: what the user's app needs (shown once)."""

    secret: str = field(repr=False)
    barcode_uri: str = field(repr=False)
    recovery_codes: tuple[str, ...] = field(default=(), repr=False)


class MfaApi:
    """The answers of ``/mfa/authenticators``, ``/mfa/challenge`` and ``/mfa/associate``."""

    def __init__(
        self,
        *,
        db: Database,
        mfa_tokens: MfaTokens,
        clock: Clock,
        hashing_keys: KeyRing,
        encryption_keys: KeyRing,
        totp_enrolment: TotpEnrolment | None,
        recovery_codes_enabled: bool,
        signing: SigningKeys,
        issuer: str,
        audience: str,
        recovery: RecoveryCodeService | None = None,
    ) -> None:
        self._db = db
        self._mfa = mfa_tokens
        self._clock = clock
        self._hashing = hashing_keys
        self._encryption = encryption_keys
        self._enrolment = totp_enrolment
        self._recovery = recovery_codes_enabled
        self._recovery_service = recovery
        self._signing = signing
        self._issuer = issuer
        self._audience = audience
        self._tokens = TokenStore(db)

    async def _pending(self, mfa_token: str) -> PendingSignIn:
        now = self._clock.now()
        pending = await self._db.query(
            functools.partial(self._mfa.find_in, token=mfa_token, now=now)
        )
        if pending is None:
            raise UnauthenticatedError()
        return pending

    async def authenticators(self, mfa_token: str) -> list[Authenticator]:
        """The user's enrolled authenticators.

        Raises:
            UnauthenticatedError: an unknown, used, burned or expired MFA token.
        """
        pending = await self._pending(mfa_token)
        return await self._db.query(functools.partial(self._list, user_id=pending.user_id))

    def _list(self, conn: Executor, *, user_id: uuid.UUID) -> list[Authenticator]:
        found: list[Authenticator] = []
        active = authenticators.get_active(conn, user_id)
        if active is not None:
            found.append(Authenticator(f"totp|{active.id}", "otp", True))
        if self._recovery and recovery_codes.has_unused(conn, user_id):
            found.append(Authenticator(RECOVERY_CODE_ID, "recovery-code", True))
        return found

    async def challenge(self, mfa_token: str, challenge_type: str) -> str:
        """The challenge type the client should prompt for (``otp``: nothing is sent).

        Raises:
            UnauthenticatedError: an unknown, used, burned or expired MFA token.
            OAuthError: ``unsupported_challenge_type``: the sign-in cannot be
                finished with a TOTP code.
        """
        pending = await self._pending(mfa_token)
        if "otp" not in challenge_type.split() or "totp" not in pending.methods:
            raise OAuthError(
                "unsupported_challenge_type", "The user has no authenticator for this challenge."
            )
        return "otp"

    async def associate(self, mfa_token: str, *, client_address: str | None = None) -> Association:
        """Start enrolling an OTP authenticator for the sign-in held for enrolment.

        Raises:
            UnauthenticatedError: an unknown, used, burned or expired MFA token.
            OAuthError: ``access_denied``: the sign-in was not held for enrolment
                (the user already has a second factor), or TOTP is off.
        """
        pending = await self._pending(mfa_token)
        if self._enrolment is None or "totp_setup" not in pending.methods:
            raise OAuthError("access_denied", "User is already enrolled.")
        user = await self._db.query(functools.partial(users.find_by_id, user_id=pending.user_id))
        if user is None:
            raise UnauthenticatedError()
        setup = await self._enrolment.setup(
            user, second_factor_recent=False, client_address=client_address
        )
        sealed = seal(self._encryption, setup.setup_token.encode(), context=SETUP_PURPOSE)
        now = self._clock.now()
        await self._db.transact(
            functools.partial(
                self._remember_setup,
                jti=keyed_hash(self._hashing.current, SETUP_PURPOSE, mfa_token),
                subject=user.subject,
                sealed=sealed,
                now=now,
                expires_at=pending.expires_at,
            )
        )
        # Auth0 hands the recovery codes out with the association: a user who holds none
        # gets the first batch now (shown this once), and confirming the setup then makes no
        # other. Until the authenticator is confirmed they stand in for nothing: a sign-in
        # offers recovery codes only beside an active authenticator.
        codes: tuple[str, ...] = ()
        if self._recovery_service is not None:
            held = await self._recovery_service.status(user)
            if held.remaining == 0:
                codes = (await self._recovery_service.generate(user)).codes
        return Association(secret=setup.secret, barcode_uri=setup.totp_url, recovery_codes=codes)

    @staticmethod
    def _remember_setup(
        conn: Executor,
        *,
        jti: str,
        subject: str,
        sealed: str,
        now: datetime,
        expires_at: datetime,
    ) -> None:
        lock_identity(conn, subject)
        tokens.replace_code(
            conn,
            jti=jti,
            purpose=SETUP_PURPOSE,
            subject=subject,
            now=now,
            expires_at=expires_at,
            extra={"setup": sealed},
        )

    async def setup_token_for(self, mfa_token: str) -> str | None:
        """The setup token an association with ``mfa_token`` started, or ``None``: no
        such association, or an MFA token that is dead or not held for enrolment.

        The ``mfa-otp`` grant hands it, with the code, to the sign-in flow's
        enrolment step, which confirms the setup and finishes the sign-in.
        """
        now = self._clock.now()
        pending = await self._db.query(
            functools.partial(self._mfa.find_in, token=mfa_token, now=now)
        )
        if pending is None or "totp_setup" not in pending.methods:
            return None
        extra = await self._db.query(
            functools.partial(
                tokens.live_token_extra,
                jti_candidates=keyed_hashes(self._hashing, SETUP_PURPOSE, mfa_token),
                purpose=SETUP_PURPOSE,
                subject=str(pending.user_id),
                now=now,
            )
        )
        sealed = (extra or {}).get("setup")
        if not isinstance(sealed, str):
            return None
        try:
            return unseal(self._encryption, sealed, context=SETUP_PURPOSE).decode()
        except UnsealError:
            return None

    async def delete_authenticator(
        self, access_token: str, authenticator_id: str, *, client_address: str | None = None
    ) -> None:
        """Remove the TOTP authenticator ``authenticator_id`` of the access token's user.

        Raises:
            UnauthenticatedError: not a live access token of this service.
            InsufficientAuthenticationError: its sign-in passed no second factor in the
                last :data:`RECENT_SECOND_FACTOR`.
            NotFoundError: the user has no such authenticator (recovery codes are
                not removed one by one: they go with the authenticator).
        """
        user, amr, auth_time = await self._access_user(access_token)
        now = self._clock.now()
        if AMR_MFA not in amr or now.timestamp() - auth_time > RECENT_SECOND_FACTOR.total_seconds():
            raise InsufficientAuthenticationError(
                "Removing an authenticator needs a recent second factor.",
                max_age=int(RECENT_SECOND_FACTOR.total_seconds()),
            )
        listed = await self._db.query(functools.partial(self._list, user_id=user.id))
        if self._enrolment is None or not any(
            entry.id == authenticator_id and entry.authenticator_type == "otp" for entry in listed
        ):
            raise NotFoundError("The user has no such authenticator.")
        await self._enrolment.disable(
            user, second_factor_recent=True, client_address=client_address
        )

    async def _access_user(self, access_token: str) -> tuple[User, list[str], float]:
        keys = await self._signing.published()
        try:
            claims = verify(
                access_token,
                keys,
                issuer=self._issuer,
                audience=self._audience,
                now=self._clock.now().timestamp(),
            )
            user_id = uuid.UUID(str(claims["sub"]))
            jti = str(claims["jti"])
            amr = [str(value) for value in claims.get("amr", [])]
            auth_time = float(claims["auth_time"])
        except (jwt.PyJWTError, KeyError, ValueError, TypeError):
            raise UnauthenticatedError() from None
        user = await self._tokens.active_user(jti=jti, user_id=user_id, now=self._clock.now())
        if user is None:
            raise UnauthenticatedError()
        return user, amr, auth_time
