"""Schemathesis, every check, over the OpenAPI document of the OAuth and MFA routes of a
real ``keystile serve``: no server error, only documented statuses and bodies.

Every check runs but ``positive_data_acceptance`` (TOOLS.md: schema-valid requests
with credentials nobody issued are rightly refused with a documented 400/401)."""

from __future__ import annotations

from pathlib import Path

from tests.servers import keystile_server
from tests.web.test_schemathesis import SERVER_ENV, run_schemathesis


def test_the_oauth_and_mfa_routes_hold(tmp_path: Path) -> None:
    """The token endpoint, passwordless start, the MFA API and the discovery documents."""
    with keystile_server(tmp_path, SERVER_ENV) as base:
        for path in (
            "/oauth/token",
            "/passwordless/start",
            "/mfa/authenticators",
            "/mfa/challenge",
            "/mfa/associate",
            "/mfa/authenticators/{authenticator_id}",
            "/.well-known/jwks.json",
            "/.well-known/openid-configuration",
        ):
            # A well-formed request with made-up credentials is refused (400/401): the
            # check that schema-valid data is accepted cannot hold for a token endpoint.
            run_schemathesis(
                tmp_path,
                base,
                "--include-path",
                path,
                "--exclude-checks",
                "positive_data_acceptance",
            )
