"""Identities, the users file, bearer tokens and Entra ID tokens, without a server."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from app.auth.identity import ADMIN, VIEWER, Identity
from app.auth.oauth import EntraId
from app.auth.tokens import TokenVerifier
from app.auth.users import UsersFile
from pipelines.errors import AuthError, ConfigError, RoleError
from pipelines.settings import load_settings
from tests.oidc_standin import OidcProvider


@pytest.mark.parametrize(
    ("role", "teams", "scope"),
    [
        (ADMIN, (), None),
        (ADMIN, ("alpha",), ["alpha"]),
        (VIEWER, ("alpha", "beta"), ["alpha", "beta"]),
        (VIEWER, (), []),
    ],
    ids=["admin-everything", "admin-of-a-team", "viewer-of-teams", "viewer-of-none"],
)
def test_only_an_admin_without_teams_reads_every_team(
    role: str, teams: tuple[str, ...], scope: list[str] | None
) -> None:
    assert Identity("x", role, teams).scope == scope


def test_an_identity_needs_a_known_role() -> None:
    assert Identity.of("x", ["owner"], []) is None
    assert Identity.of("x", ["viewer", "admin"], ["b", "a", "a"]) == Identity(
        "x", ADMIN, ("a", "b")
    )
    assert Identity.from_json(Identity("x", VIEWER, ("a",)).to_json()) == Identity(
        "x", VIEWER, ("a",)
    )
    assert Identity.from_json("{not json") is None


def test_the_users_file_keeps_hashes_and_checks_passwords(tmp_path: Path) -> None:
    path = tmp_path / "users.toml"
    users = UsersFile(path)
    users.add("ada", VIEWER, ["alpha"], "ada's password")
    users.add("root", ADMIN, [], "root's password")
    assert "ada's password" not in path.read_text()
    assert path.stat().st_mode & 0o077 == 0  # readable by its owner only
    assert users.verify("ada", "ada's password") == Identity("ada", VIEWER, ("alpha",))
    assert users.verify("ada", "wrong") is None
    assert users.verify("nobody", "ada's password") is None
    users.add("ada", ADMIN, [], "a new password")  # replaced, not added twice
    assert users.verify("ada", "ada's password") is None
    assert UsersFile(path).identity("ada") == Identity("ada", ADMIN)
    users.remove("ada")
    assert users.identity("ada") is None
    with pytest.raises(ConfigError, match="no user 'ada'"):
        users.remove("ada")
    with pytest.raises(ConfigError, match="at least 8"):
        users.add("bob", VIEWER, [], "short")


def test_a_users_file_that_cannot_be_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "users.toml"
    path.write_text('[users.ada]\nrole = "viewer"\npassword = "plain text"\n')
    with pytest.raises(ConfigError, match="no argon2 password hash"):
        UsersFile(path).users()
    path.write_text("[users.ada\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        UsersFile(path).users()


KEY = "a-shared-secret-of-the-tests-0123456789"


def claims(**values: Any) -> dict[str, Any]:
    return {
        "sub": "ada",
        "roles": ["viewer"],
        "teams": ["alpha"],
        "exp": time.time() + 60,
        **values,
    }


def test_tokens_are_verified_by_key_audience_issuer_and_expiry() -> None:
    tokens = TokenVerifier(KEY, ["HS256"], audience="dash", issuer="https://id.test/")
    good = jwt.encode(claims(aud="dash", iss="https://id.test/"), KEY, algorithm="HS256")
    assert tokens.identity(good) == Identity("ada", VIEWER, ("alpha",))
    for bad, says in [
        (claims(aud="dash", iss="https://id.test/", exp=time.time() - 1), "expired"),
        (claims(aud="other", iss="https://id.test/"), "audience"),
        (claims(aud="dash", iss="https://other.test/"), "issuer"),
    ]:
        with pytest.raises(AuthError, match=says):
            tokens.identity(jwt.encode(bad, KEY, algorithm="HS256"))
    forged = jwt.encode(claims(aud="dash", iss="https://id.test/"), "x" * 40, algorithm="HS256")
    with pytest.raises(AuthError, match="refused"):
        tokens.identity(forged)
    unsigned = jwt.encode(claims(aud="dash", iss="https://id.test/"), None, algorithm="none")
    with pytest.raises(AuthError, match="refused"):
        tokens.identity(unsigned)
    no_role = jwt.encode(claims(aud="dash", iss="https://id.test/", roles=[]), KEY, "HS256")
    with pytest.raises(RoleError):
        tokens.identity(no_role)


def test_a_public_key_verifies_es256_tokens(tmp_path: Path) -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (tmp_path / "key.pem").write_bytes(pem)
    settings = load_settings({"AGENTDASH_JWT_PUBLIC_KEY": str(tmp_path / "key.pem")})
    tokens = TokenVerifier.from_settings(settings)
    assert tokens.identity(jwt.encode(claims(), private, algorithm="ES256")).name == "ada"
    # An HS256 token "signed" with the public key itself is not taken for a good one.
    with pytest.raises(AuthError):
        tokens.identity(jwt.encode(claims(), KEY, algorithm="HS256"))


@pytest.fixture(scope="module")
def provider() -> Iterator[OidcProvider]:
    directory = OidcProvider(
        "client",
        "secret",
        users={
            "carol@example.test": {"roles": ["viewer"], "groups": ["g-alpha", "g-other"]},
            "dave@example.test": {"groups": ["g-alpha"]},
        },
    )
    directory.start()
    yield directory
    directory.stop()


def entra(provider: OidcProvider) -> EntraId:
    return EntraId(
        provider.authority.format(tenant=provider.tenant),
        "client",
        "secret",
        b"k" * 32,
        {"g-alpha": "alpha"},
    )


def stored(entra: EntraId, token: str) -> str:
    return entra.fernet.encrypt(token.encode()).decode()


def test_id_tokens_are_checked_against_the_directorys_keys(provider: OidcProvider) -> None:
    directory = entra(provider)
    good = provider.id_token("carol@example.test")
    assert directory.identity(stored(directory, good)) == Identity(
        "carol@example.test", VIEWER, ("alpha",)
    )
    with pytest.raises(RoleError, match="no role"):
        directory.identity(stored(directory, provider.id_token("dave@example.test")))
    with pytest.raises(AuthError, match=r"(?i)audience"):
        directory.identity(stored(directory, provider.id_token("carol@example.test", "other")))
    forged = jwt.encode(
        jwt.decode(good, options={"verify_signature": False}),
        OidcProvider("c", "s", {}).key,
        algorithm="RS256",
        headers={"kid": provider.kid},
    )
    with pytest.raises(AuthError, match="refused"):
        directory.identity(stored(directory, forged))
    with pytest.raises(AuthError, match="sign in again"):
        directory.identity(base64.urlsafe_b64encode(b"tampered").decode())


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"AGENTDASH_AUTH": "ldap"}, "is not one of none, basic, oauth, jwt"),
        ({"AGENTDASH_RATE_LIMIT": "lots"}, "is not a rate"),
        ({"AGENTDASH_ALLOWED_ORIGINS": "*"}, "wildcards are refused"),
        ({"AGENTDASH_ALLOWED_ORIGINS": "dash.example.com"}, "is not host:port"),
        ({"AGENTDASH_OAUTH_EXTRA_PARAMS": "tenant=x"}, "must be a JSON object"),
        ({"AGENTDASH_LOG_FORMAT": "xml"}, "is not one of text, json"),
    ],
)
def test_sign_in_settings_refuse_what_cannot_work(env: dict[str, str], says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        load_settings(env)


def test_sign_in_settings_read_as_documented(tmp_path: Path) -> None:
    config = tmp_path / "agentdash.toml"
    config.write_text('[teams]\n"g-1" = "alpha"\n')
    settings = load_settings(
        {
            "AGENTDASH_CONFIG": str(config),
            "AGENTDASH_AUTH": "JWT",
            "AGENTDASH_RATE_LIMIT": "10/second;200/hour",
            "AGENTDASH_ALLOWED_ORIGINS": "Dash.Example.com:443, localhost:8080",
            "AGENTDASH_OAUTH_EXTRA_PARAMS": '{"tenant": "t-1"}',
        }
    )
    assert settings.auth == "jwt"
    assert settings.allowed_origins == ("dash.example.com:443", "localhost:8080")
    assert settings.oauth_extra_params == {"tenant": "t-1"}
    assert settings.teams == {"g-1": "alpha"}
    assert settings.rate_limit == "10/second;200/hour"
    assert "cookie_secret" not in repr(load_settings({"AGENTDASH_COOKIE_SECRET": "s" * 40}))
