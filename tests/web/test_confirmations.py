"""Destructive dashboard actions ask first even without the page's script: a post that
does not carry the confirmation step's field answers the server's own question."""

from __future__ import annotations

import re
from html import unescape

from tests.web.conftest import Dashboard, csrf_of
from tickwork.models import ApiToken


def _hidden_fields(html: str, action: str) -> dict[str, str]:
    """The hidden fields of the page's form posting to ``action``."""
    form = re.search(
        rf'<form method="post" action="{re.escape(action)}"[^>]*>(.*?)</form>', html, re.S
    )
    assert form, html[-2000:]
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form[1]))


async def test_revoking_a_token_without_the_script_asks_first(dashboard: Dashboard) -> None:
    made = await dashboard.scheduler.create_token("carol", read_only=True)
    assert made is not None
    carol = made[0]
    admin = await dashboard.signed_in("admin")
    async with admin:
        page = await admin.get("/tokens")
        action = f"/tokens/{carol.id}/revoke"
        assert f'action="{action}"' in page.text
        # The plain post of the list's Revoke button: a question, nothing revoked yet.
        r = await admin.post(action, data={"csrf": csrf_of(page.text)})
        assert r.status_code == 200
        text = unescape(r.text)
        assert f"Revoke token {carol.id} of carol (read-only)? It stops working at once." in text
        assert re.search(r'<button type="submit" class="danger">Revoke</button>', r.text)
        assert 'href="/tokens">Keep it</a>' in r.text
        assert (
            _token(await dashboard.scheduler.list_tokens(include_revoked=True), carol.id).revoked_at
            is None
        )
        fields = _hidden_fields(r.text, action)
        assert fields == {"csrf": csrf_of(page.text), "confirmed": "1"}
        # The confirmation still needs the session's form token.
        r = await admin.post(action, data={"confirmed": "1"})
        assert r.status_code == 403
        assert (
            _token(await dashboard.scheduler.list_tokens(include_revoked=True), carol.id).revoked_at
            is None
        )
        # The question's own button revokes it.
        r = await admin.post(action, data=fields)
        assert r.status_code == 303 and r.headers["location"] == "/tokens"
        assert (
            _token(await dashboard.scheduler.list_tokens(include_revoked=True), carol.id).revoked_at
            is not None
        )
        assert f"Revoked token {carol.id}." in (await admin.get("/tokens")).text
        # Asked again (a page opened before): said so, no question, nothing changed.
        for gone in (carol.id, "does-not-exist"):
            r = await admin.post(f"/tokens/{gone}/revoke", data={"csrf": csrf_of(page.text)})
            assert r.status_code == 303
            listing = unescape((await admin.get("/tokens")).text)
            assert f"Not revoked: no active token '{gone}'." in listing
        r = await admin.post(action, data=fields)
        assert r.status_code == 303
        listing = unescape((await admin.get("/tokens")).text)
        assert f"Not revoked: token '{carol.id}' is already revoked." in listing


async def test_revoking_the_token_signed_in_with_warns_of_the_sign_out(
    dashboard: Dashboard,
) -> None:
    made = await dashboard.scheduler.create_token("root", admin=True)
    assert made is not None
    token, secret = made
    async with dashboard.client() as root:
        r = await root.post("/login", data={"token": secret, "next": "/"})
        assert r.status_code == 303
        page = await root.get("/tokens")
        r = await root.post(f"/tokens/{token.id}/revoke", data={"csrf": csrf_of(page.text)})
        assert r.status_code == 200
        assert "It is the token you are signed in with: you will be signed out." in r.text


def _token(tokens: list[ApiToken], token_id: str) -> ApiToken:
    return next(t for t in tokens if t.id == token_id)
