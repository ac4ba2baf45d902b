"""The OpenAPI document describes every answer a route can give."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from keystile.settings import Settings

EXPECTED = {
    ("/auth/user/password/sign_in", "post"): {"200", "400", "401", "429", "503"},
    ("/auth/user/password/register", "post"): {"200", "400", "429", "503"},
    ("/auth/user/password/confirm", "post"): {"200", "400", "401", "429", "503"},
    ("/auth/me", "get"): {"200", "401", "503"},
    ("/auth/sign_out", "post"): {"204", "401", "503"},
}


def test_every_route_documents_its_statuses_and_none_documents_422(
    make_client: Callable[[Settings], TestClient], make_settings: Callable[..., Settings]
) -> None:
    """Keystile answers 400 invalid_request where FastAPI would say 422."""
    client = make_client(make_settings(password_registration_enabled=True))
    paths = client.get("/openapi.json").json()["paths"]
    for (path, method), statuses in EXPECTED.items():
        documented = set(paths[path][method]["responses"])
        assert statuses <= documented, (path, documented)
        assert "422" not in documented


def test_email_fields_state_the_identity_rules(
    make_client: Callable[[Settings], TestClient], make_settings: Callable[..., Settings]
) -> None:
    """Every ``email`` field says ``format: email`` and ``maxLength: 320``, the rules the
    identity check applies, so data valid against the document is not refused for length."""
    client = make_client(make_settings(password_registration_enabled=True))
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    email_fields = [
        properties["email"]
        for name, schema in schemas.items()
        if name not in {"UserBody"} and "email" in (properties := schema.get("properties", {}))
    ]
    assert len(email_fields) >= 3
    for email in email_fields:
        assert email["format"] == "email"
        assert email["maxLength"] == 320
