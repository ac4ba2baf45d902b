"""``keystile client …`` and ``keystile keys rotate --signing`` as an operator runs them."""

from __future__ import annotations

from pathlib import Path

from tests.attacks.processes import keystile_command
from tests.oauth.service import SERVER_ENV, create_client


def test_client_create_list_rotate_secret_delete(tmp_path: Path) -> None:
    """A confidential client's secret is printed once and never listed; a public client has
    none; rotate-secret prints a new one; delete removes it; an unknown grant is refused."""
    env = dict(SERVER_ENV)
    client_id, secret = create_client(tmp_path, env, "--grant", "password", "--grant", "mfa-otp")
    public_id, none = create_client(tmp_path, env, "--public", "--grant", "password")
    assert secret
    assert none == ""
    listed = keystile_command(tmp_path, env, "client", "list")
    assert listed.returncode == 0, listed.stderr
    assert client_id in listed.stdout
    assert f"{public_id}  test-app  public" in listed.stdout
    assert secret not in listed.stdout
    rotated = keystile_command(tmp_path, env, "client", "rotate-secret", client_id)
    assert rotated.returncode == 0, rotated.stderr
    assert rotated.stdout.startswith("client_secret: ")
    assert secret not in rotated.stdout
    refused = keystile_command(tmp_path, env, "client", "rotate-secret", public_id)
    assert refused.returncode == 1
    assert refused.stderr == "error: No confidential client has this id.\n"
    deleted = keystile_command(tmp_path, env, "client", "delete", client_id)
    assert deleted.returncode == 0, deleted.stderr
    assert client_id not in keystile_command(tmp_path, env, "client", "list").stdout
    unknown = keystile_command(tmp_path, env, "client", "create", "x", "--grant", "implicit")
    assert unknown.returncode != 0
    assert "unknown grant 'implicit'" in unknown.stderr


def test_keys_rotate_signing_reports_the_new_and_published_keys(tmp_path: Path) -> None:
    """Two rotations: each names a new kid; the earlier keys stay published."""
    env = dict(SERVER_ENV)
    first = keystile_command(tmp_path, env, "keys", "rotate", "--signing")
    second = keystile_command(tmp_path, env, "keys", "rotate", "--signing")
    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    new_kid = second.stdout.split()[2]
    old_kid = first.stdout.split()[2]
    assert new_kid != old_kid
    assert second.stdout.rstrip().endswith(f"published: {new_kid}, {old_kid}")
