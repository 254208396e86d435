"""Credentials over real HTTP: API tokens (read-only, revoked, expired, forged), the
admin token, JWTs (HS256, RS256, ES256; wrong key, audience, issuer, expired), the
first start's admin token, and that no secret reaches the server's log."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.api.conftest import ADMIN_TOKEN, Server, StartServer, serve_env, serve_refusal
from tickwork.api.settings import ApiSettings
from tickwork.errors import ValidationError


def _code(r: httpx.Response) -> tuple[int, str]:
    return r.status_code, r.json()["error"]["code"]


def test_no_bad_or_forged_credentials_are_401(server: Server) -> None:
    alice = server.user_token("alice")
    forged = alice[:-4] + ("AAAA" if not alice.endswith("AAAA") else "BBBB")
    for header in (
        None,
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "Bearer nonsense",
        f"Bearer {forged}",
        f"Bearer {ADMIN_TOKEN}x",
        "Bearer tw_000000000000_" + "A" * 43,
        "Bearer a.b.c",  # JWT-shaped, but no JWT key is configured
    ):
        headers = {} if header is None else {"Authorization": header}
        r = httpx.get(f"{server.api}/schedules", headers=headers)
        assert _code(r) == (401, "unauthorized"), (header, r.text)
        assert r.headers["WWW-Authenticate"] == "Bearer"
    assert server.client(alice).get("/schedules").status_code == 200


def test_a_401_says_what_is_wrong_with_the_authorization_header(server: Server) -> None:
    """A header that is not one ``Bearer <credential>`` is named as such, not taken for
    no credentials at all; its value (maybe a secret) is never echoed."""
    for headers, expected in (
        ([], "no credentials"),
        ([("Authorization", "")], "the Authorization header is empty"),
        ([("Authorization", "Basic dXNlcjpwYXNz")], "scheme is not Bearer"),
        ([("Authorization", f"Token {ADMIN_TOKEN}")], "scheme is not Bearer"),
        ([("Authorization", ADMIN_TOKEN)], "no scheme before the credential"),
        ([("Authorization", "Bearer")], "no credential after Bearer"),
        ([("Authorization", "Bearer nonsense")], "invalid, expired or revoked"),
    ):
        for path in ("/schedules", "/runs"):  # the quick read and a routed one
            r = httpx.get(f"{server.api}{path}", headers=headers)
            assert _code(r) == (401, "unauthorized"), (headers, r.text)
            message = r.json()["error"]["message"]
            assert expected in message, (headers, message)
            assert "dXNlcjpwYXNz" not in message and ADMIN_TOKEN not in message
    tab = httpx.get(f"{server.api}/schedules", headers={"Authorization": f"Bearer\t{ADMIN_TOKEN}"})
    assert tab.status_code == 200, tab.text


def test_read_only_tokens_only_read(server: Server) -> None:
    server.admin.post("/schedules", json={"id": "s", "task": "api:echo", "schedule": "1h"})
    server.admin.patch("/schedules/s", json={"owner": "reader"})
    ro = server.client(server.user_token("reader", read_only=True))
    assert ro.get("/schedules/s").status_code == 200
    assert ro.get("/runs").status_code == 200
    for method, path, body in (
        ("POST", "/schedules", {"task": "api:echo", "schedule": "1h"}),
        ("PUT", "/schedules/s", {"task": "api:echo", "schedule": "2h"}),
        ("PATCH", "/schedules/s", {"name": "x"}),
        ("DELETE", "/schedules/s", None),
        ("POST", "/schedules/s/pause", None),
        ("POST", "/schedules/s/resume", None),
        ("POST", "/schedules/s/run", None),
        (
            "POST",
            "/schedules/s/backfill",
            {"start": "2026-01-01T00:00Z", "end": "2026-01-02T00:00Z"},
        ),
    ):
        r = ro.request(method, path, json=body)
        assert _code(r) == (403, "forbidden"), (method, path, r.text)
    assert ro.get("/queues/q/messages", params={"consume": "true"}).status_code == 403
    assert server.admin.get("/schedules/s").json()["name"] == ""


def test_revoked_and_expired_tokens_are_refused_at_once(server: Server) -> None:
    admin = server.admin
    made = admin.post("/tokens", json={"user": "bob"}).json()
    bob = server.client(made["token"])
    assert bob.get("/schedules").status_code == 200
    listed = {t["id"]: t for t in admin.get("/tokens").json()["items"]}
    assert listed[made["id"]]["last_used_at"] is not None  # recorded on use
    assert "token" not in listed[made["id"]]  # the secret is never shown again
    assert admin.delete(f"/tokens/{made['id']}").status_code == 200
    assert _code(bob.get("/schedules")) == (401, "unauthorized")
    assert made["id"] not in {t["id"] for t in admin.get("/tokens").json()["items"]}

    short = admin.post("/tokens", json={"user": "carol", "expires": "1s"}).json()
    assert short["expires_at"] is not None
    carol = server.client(short["token"])
    assert carol.get("/schedules").status_code == 200
    time.sleep(1.2)
    assert _code(carol.get("/schedules")) == (401, "unauthorized")
    # A year is a calendar one: the same day a year later, not 360 or 365 days.
    year = admin.post("/tokens", json={"user": "erin", "expires": "1y"}).json()
    made_at = datetime.fromisoformat(year["created_at"])
    expires_at = datetime.fromisoformat(year["expires_at"])
    leap_day = (made_at.month, made_at.day) == (2, 29)
    a_year_on = made_at.replace(year=made_at.year + 1, day=28 if leap_day else made_at.day)
    assert abs(expires_at - a_year_on) < timedelta(seconds=1)
    # Bad expiry, not admin, unknown token.
    assert admin.post("/tokens", json={"user": "x", "expires": "soon"}).status_code == 422
    dave = server.client(server.user_token("dave"))
    assert _code(dave.post("/tokens", json={"user": "dave", "admin": True})) == (
        403,
        "forbidden",
    )
    assert _code(dave.get("/tokens")) == (403, "forbidden")
    assert _code(admin.delete("/tokens/nope")) == (404, "not_found")


def test_revoking_a_token_again_is_a_409_that_changes_and_records_nothing(
    server: Server,
) -> None:
    admin = server.admin
    made = admin.post("/tokens", json={"user": "bob"}).json()
    first = admin.delete(f"/tokens/{made['id']}")
    assert first.status_code == 200 and first.json()["revoked_at"] is not None
    again = admin.delete(f"/tokens/{made['id']}")
    assert _code(again) == (409, "conflict")
    assert again.json()["error"]["message"] == f"token {made['id']!r} is already revoked"
    audited = admin.get("/audit", params={"target": f"token:{made['id']}"}).json()["items"]
    assert sorted(e["action"] for e in audited) == ["token.created", "token.revoked"]


def _rsa() -> tuple[Any, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return key, pem.decode()


def _ec() -> tuple[Any, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return key, pem.decode()


def _claims(**extra: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    claims: dict[str, Any] = {
        "sub": "jane",
        "iss": "https://id.example",
        "aud": "tickwork",
        "iat": now,
        "exp": now + timedelta(minutes=5),
    }
    claims.update(extra)
    return claims


def _hs256_by_hand(claims: dict[str, Any], key: bytes) -> str:
    """An HS256 JWT made without PyJWT (which refuses a PEM key as an HMAC secret)."""

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    signing = b64(b'{"alg":"HS256","typ":"JWT"}') + "." + b64(json.dumps(claims).encode())
    signature = hmac.new(key, signing.encode(), hashlib.sha256).digest()
    return f"{signing}.{b64(signature)}"


def _get(server: Server, token: str, path: str = "/schedules") -> httpx.Response:
    return httpx.get(f"{server.api}{path}", headers={"Authorization": f"Bearer {token}"})


def test_hs256_jwts(sqlite_url: str, serve_api: StartServer) -> None:
    secret = "s3cret-for-hs256-which-is-long-enough"
    server = serve_api(
        sqlite_url,
        env={
            "TICKWORK_JWT_SECRET": secret,
            "TICKWORK_JWT_ISSUER": "https://id.example",
            "TICKWORK_JWT_AUDIENCE": "tickwork",
        },
    )
    good = jwt.encode(_claims(), secret, algorithm="HS256")
    r = httpx.post(
        f"{server.api}/schedules",
        headers={"Authorization": f"Bearer {good}"},
        json={"id": "j", "task": "api:echo", "schedule": "1h"},
    )
    assert r.status_code == 201 and r.json()["owner"] == "jane"
    assert _get(server, good, "/audit").status_code == 403  # not an admin
    for admin_claims in ({"admin": True}, {"role": "admin"}, {"roles": ["ops", "admin"]}):
        token = jwt.encode(_claims(**admin_claims), secret, algorithm="HS256")
        assert _get(server, token, "/audit").status_code == 200, admin_claims
    refused = {
        "wrong key": jwt.encode(_claims(), "another-secret-of-enough-length!", algorithm="HS256"),
        "wrong audience": jwt.encode(_claims(aud="other"), secret, algorithm="HS256"),
        "no audience": jwt.encode(
            {k: v for k, v in _claims().items() if k != "aud"}, secret, algorithm="HS256"
        ),
        "wrong issuer": jwt.encode(_claims(iss="https://evil.example"), secret, algorithm="HS256"),
        "expired": jwt.encode(
            _claims(exp=datetime.now(UTC) - timedelta(minutes=1)), secret, algorithm="HS256"
        ),
        "no subject": jwt.encode(
            {k: v for k, v in _claims().items() if k != "sub"}, secret, algorithm="HS256"
        ),
        "alg none": jwt.encode(_claims(), None, algorithm="none"),  # type: ignore[arg-type]
        "tampered": good[:-3] + ("abc" if not good.endswith("abc") else "xyz"),
        # A read_only claim that is not a boolean: refused, not taken for a writer.
        "read_only 'yes'": jwt.encode(_claims(read_only="yes"), secret, algorithm="HS256"),
        "read_only 1": jwt.encode(_claims(read_only=1), secret, algorithm="HS256"),
    }
    for why, token in refused.items():
        assert _code(_get(server, token)) == (401, "unauthorized"), why
    # Read-only claim.
    ro = jwt.encode(_claims(read_only=True), secret, algorithm="HS256")
    assert _get(server, ro).status_code == 200
    r = httpx.post(f"{server.api}/schedules/j/pause", headers={"Authorization": f"Bearer {ro}"})
    assert r.status_code == 403
    writer = jwt.encode(_claims(read_only=False), secret, algorithm="HS256")
    r = httpx.post(f"{server.api}/schedules/j/pause", headers={"Authorization": f"Bearer {writer}"})
    assert r.status_code == 200, r.text
    assert secret not in server.output() and good not in server.output()


def test_a_jwt_secret_too_short_to_be_safe_is_refused_at_start(sqlite_url: str) -> None:
    """Every user holds JWTs signed with the HS256 secret and can test guesses of it
    offline; a short one found lets them sign themselves an admin's. ``serve`` refuses a
    secret under 32 bytes (RFC 7518), saying how long it is and never what it is."""
    weak = "hunter2-secret"
    stderr = serve_refusal(sqlite_url, env={"TICKWORK_JWT_SECRET": weak})
    assert "TICKWORK_JWT_SECRET is 14 bytes long" in stderr and "at least 32" in stderr, stderr
    assert weak not in stderr
    # 32 bytes, as many as the hash's output: taken.
    with pytest.raises(ValidationError, match="31 bytes"):
        ApiSettings(jwt_secret="x" * 31)
    assert ApiSettings(jwt_secret="x" * 32).jwt_enabled


def test_an_admin_token_too_short_to_be_safe_is_refused_at_start(sqlite_url: str) -> None:
    """Anyone who reaches the server may guess TICKWORK_ADMIN_TOKEN, a placeholder such
    as ``change-me`` among the first: ``serve`` refuses one under 16 bytes, saying how
    long it is and never what it is."""
    stderr = serve_refusal(sqlite_url, env={"TICKWORK_ADMIN_TOKEN": "change-me"})
    assert "TICKWORK_ADMIN_TOKEN is 9 bytes long" in stderr and "at least 16" in stderr, stderr
    assert "change-me" not in stderr
    with pytest.raises(ValidationError, match="15 bytes"):
        ApiSettings(admin_token="x" * 15)
    assert ApiSettings(admin_token="x" * 16).admin_token == "x" * 16


def test_rs256_and_es256_jwts_with_a_public_key_file(
    sqlite_url: str, serve_api: StartServer, tmp_path: Path
) -> None:
    rsa_key, rsa_pem = _rsa()
    ec_key, ec_pem = _ec()
    other_key, _ = _rsa()
    pem_file = tmp_path / "public.pem"
    pem_file.write_text(rsa_pem)
    server = serve_api(sqlite_url, env={"TICKWORK_JWT_PUBLIC_KEY": str(pem_file)})
    good = jwt.encode(_claims(), rsa_key, algorithm="RS256")
    assert _get(server, good).status_code == 200
    assert _code(_get(server, jwt.encode(_claims(), other_key, algorithm="RS256")))[0] == 401
    # An HS256 token signed with the public key as its secret: the classic confusion.
    confused = _hs256_by_hand({"sub": "jane"}, rsa_pem.encode())
    assert _code(_get(server, confused))[0] == 401
    server.stop()
    ec_server = serve_api(sqlite_url, env={"TICKWORK_JWT_PUBLIC_KEY": ec_pem})
    token = jwt.encode(_claims(admin=True), ec_key, algorithm="ES256")
    assert _get(ec_server, token, "/audit").status_code == 200
    wrong = jwt.encode(_claims(), _ec()[0], algorithm="ES256")
    assert _code(_get(ec_server, wrong))[0] == 401


def test_first_start_prints_an_admin_token_once(sqlite_url: str, serve_api: StartServer) -> None:
    first = serve_api(sqlite_url, admin_token=None)
    deadline = time.monotonic() + 10  # printed right after the line the fixture waits for
    while "Dashboard:" not in "".join(first.stdout) and time.monotonic() < deadline:
        time.sleep(0.05)
    out = "".join(first.stdout)
    assert "Dashboard: http://127.0.0.1:" in out
    token = next(line.strip() for line in out.splitlines() if line.strip().startswith("tw_"))
    assert _get(first, token, "/audit").status_code == 200
    assert first.stop() == 0
    again = serve_api(sqlite_url, admin_token=None)
    time.sleep(0.5)
    assert "tw_" not in "".join(again.stdout)
    assert _get(again, token, "/tokens").json()["items"][0]["user"] == "admin"
    assert token not in again.stderr() and token not in first.stderr()


def test_a_token_revoked_by_another_process_is_refused_at_the_next_request(
    db_server: Server,
) -> None:
    made = db_server.admin.post("/tokens", json={"user": "erin"}).json()
    erin = db_server.client(made["token"])
    for _ in range(3):  # the token's check is warm
        assert erin.get("/schedules").status_code == 200
    cli = subprocess.run(
        [sys.executable, "-m", "tickwork.cli", "--db", db_server.db_url, "token", "revoke",
         made["id"]],
        capture_output=True, text=True, timeout=60, env=serve_env(),
    )  # fmt: skip
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert _code(erin.get("/schedules")) == (401, "unauthorized")
    assert _code(erin.get(f"/schedules/{made['id']}")) == (401, "unauthorized")
