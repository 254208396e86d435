"""The dashboard's pages through the app itself (no browser): sign in, scoping, forms,
actions, and the headers every page carries."""

from __future__ import annotations

import asyncio
import base64
import re
from datetime import UTC, datetime
from html import unescape
from urllib.parse import quote
from zoneinfo import ZoneInfo

from tests.web.conftest import Dashboard, csrf_of, post_form
from tickwork.models import Schedule
from tickwork.web.actions import validation_preview
from tickwork.web.data import describe as describe_schedule


async def test_a_page_needs_a_session_and_a_bad_token_is_refused(dashboard: Dashboard) -> None:
    async with dashboard.client() as client:
        r = await client.get("/schedules")
        assert r.status_code == 303
        assert r.headers["location"] == "/login?next=%2Fschedules"
        r = await client.post("/login", data={"token": "nope", "next": "/"})
        assert r.status_code == 401
        assert "not valid" in r.text
        assert "tickwork_session" not in r.headers.get("set-cookie", "")


async def test_a_form_sent_after_the_session_ended_leads_back_to_its_page(
    dashboard: Dashboard,
) -> None:
    """Signed out meanwhile (in another tab, or the token revoked): the post changes
    nothing, and signing in leads back to the page the form was on, not to the form's
    address, which only takes posts."""
    alice = await dashboard.signed_in("alice")
    async with alice:
        await _create(dashboard, alice, "nightly")
        csrf = csrf_of((await alice.get("/schedules/nightly")).text)
    async with dashboard.client() as signed_out:
        for action, referer, back in (
            (
                "pause",
                "http://testserver/schedules/nightly?status=failed",
                "/schedules/nightly?status=failed",
            ),
            ("run", "http://elsewhere.example/schedules/nightly", "/"),
            ("delete", None, "/"),
        ):
            r = await signed_out.post(
                f"/schedules/nightly/{action}",
                data={"csrf": csrf, "confirmed": "1"},
                headers={"Referer": referer} if referer else {},
            )
            assert r.status_code == 303
            assert r.headers["location"] == f"/login?next={quote(back, safe='')}", action
        login = await signed_out.get(r.headers["location"])
        assert "You were signed out before that was sent" in unescape(login.text)
        r = await signed_out.post(
            "/login", data={"token": dashboard.tokens["alice"], "next": "/schedules/nightly"}
        )
        assert r.headers["location"] == "/schedules/nightly"
        assert (await signed_out.get("/schedules/nightly")).status_code == 200
    s = await dashboard.scheduler.get_schedule("nightly")
    assert not s.paused
    assert await dashboard.scheduler.list_runs("nightly") == []


async def test_sign_in_sets_an_httponly_samesite_cookie_and_sign_out_ends_it(
    dashboard: Dashboard,
) -> None:
    async with dashboard.client() as client:
        r = await client.post("/login", data={"token": dashboard.tokens["alice"], "next": "/x"})
        assert r.status_code == 303 and r.headers["location"] == "/x"
        cookie = r.headers["set-cookie"]
        assert "tickwork_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
        page = await client.get("/")
        assert page.status_code == 200 and "alice" in page.text
        r = await client.post("/logout", data={"csrf": csrf_of(page.text)})
        assert r.status_code == 303
        client.cookies.clear()  # the response deleted it; httpx keeps expired ones per spec
        assert (await client.get("/")).status_code == 303


async def test_login_never_redirects_off_site(dashboard: Dashboard) -> None:
    async with dashboard.client() as client:
        r = await client.post(
            "/login",
            data={"token": dashboard.tokens["alice"], "next": "/"},
            headers={"origin": "https://evil.example"},
        )
        assert r.status_code == 403 and "tickwork_session" not in r.headers.get("set-cookie", "")
        for target in ("https://evil.example/", "//evil.example/x", "javascript:alert(1)"):
            r = await client.post(
                "/login", data={"token": dashboard.tokens["alice"], "next": target}
            )
            assert r.headers["location"] == "/"


async def test_every_page_has_a_csp_without_inline_script(dashboard: Dashboard) -> None:
    client = await dashboard.signed_in("admin")
    async with client:
        for path in (
            "/",
            "/schedules",
            "/schedules/new",
            "/runs",
            "/tasks",
            "/nodes",
            "/audit",
            "/tokens",
            "/login",
        ):
            r = await client.get(path)
            assert r.status_code == 200, (path, r.text[:500])
            csp = r.headers["content-security-policy"]
            assert "script-src 'self'" in csp and "unsafe-inline" not in csp
            # Every <script> loads a file; no inline code, no on* handlers, no style="".
            assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", r.text), path
            assert not re.search(r"\son[a-z]+=", r.text), path
            assert "style=" not in r.text, path


async def test_a_post_without_the_csrf_token_is_refused(dashboard: Dashboard) -> None:
    client = await dashboard.signed_in("alice")
    async with client:
        s = await _create(dashboard, client, "nightly")
        r = await client.post(f"/schedules/{s}/pause", data={"reason": "x"})
        assert r.status_code == 403
        r = await client.post(
            f"/schedules/{s}/pause",
            data={"csrf": "0" * 64, "reason": "x"},
        )
        assert r.status_code == 403
        page = await client.get(f"/schedules/{s}")
        r = await client.post(
            f"/schedules/{s}/pause",
            data={"csrf": csrf_of(page.text)},
            headers={"origin": "https://evil.example"},
        )
        assert r.status_code == 403
        assert not (await dashboard.scheduler.get_schedule(s)).paused


async def _create(dashboard: Dashboard, client: object, name: str, **extra: str) -> str:
    import httpx

    assert isinstance(client, httpx.AsyncClient)
    form = await client.get("/schedules/new")
    assert form.status_code == 200
    data = {
        "csrf": csrf_of(form.text),
        "task": "reports:daily",
        "schedule": "0 2 * * *",
        "timezone": "Europe/Paris",
        "data": '{"region": "us"}',
        "name": name,
        "id": name,
        **extra,
    }
    r = await client.post("/schedules/new", data=data)
    assert r.status_code == 303, r.text
    assert r.headers["location"] == f"/schedules/{name}"
    return name


async def test_create_through_the_form_and_see_it_listed(dashboard: Dashboard) -> None:
    client = await dashboard.signed_in("alice")
    async with client:
        await _create(dashboard, client, "nightly", tags="reports, eu")
        s = await dashboard.scheduler.get_schedule("nightly")
        assert s.owner == "alice" and s.timezone == "Europe/Paris" and s.data == {"region": "us"}
        assert s.tags == ("reports", "eu")
        page = await client.get("/schedules")
        assert "nightly" in page.text
        assert "At 02:00" in page.text  # plain English
        assert "0 2 * * *" in page.text  # as written
        detail = await client.get("/schedules/nightly")
        assert detail.status_code == 200
        assert len(re.findall(r"<li><time ", detail.text)) == 10  # next 10 fires


async def test_a_wrong_expression_is_named_under_the_field(dashboard: Dashboard) -> None:
    client = await dashboard.signed_in("alice")
    async with client:
        r = await client.get("/ui/validate", params={"schedule": "0 0 32 * *", "timezone": "UTC"})
        assert "day-of-month 32 out of range 1-31" in r.text and 'role="alert"' in r.text
        r = await client.get("/ui/validate", params={"schedule": "*/15 * * * *", "timezone": "UTC"})
        assert "Next:" in r.text and r.text.count(" · ") == 4  # 5 fire times
        # What fires at once is listed: "now" once, an interval first at its anchor.
        r = await client.get("/ui/validate", params={"schedule": "now", "timezone": "UTC"})
        assert "Next:" in r.text and "Never fires" not in r.text
        form = await client.get("/schedules/new")
        r = await client.post(
            "/schedules/new",
            data={
                "csrf": csrf_of(form.text),
                "task": "reports:daily",
                "schedule": "61 * * * *",
                "timezone": "UTC",
                "data": "{not json",
            },
        )
        assert r.status_code == 400
        assert "minute 61 out of range" in r.text
        assert "not valid JSON" in r.text
        assert await dashboard.scheduler.list_schedules() == []


async def test_data_is_checked_against_the_tasks_parameters(dashboard: Dashboard) -> None:
    client = await dashboard.signed_in("alice")
    async with client:
        r = await client.get("/ui/check-data", params={"task": "reports:daily", "data": '{"x": 1}'})
        assert "takes no argument 'x'" in unescape(r.text)
        r = await client.get(
            "/ui/check-data", params={"task": "reports:daily", "data": '{"rows": 1}'}
        )
        assert "Data fits the task" in r.text
        r = await client.get("/ui/task", params={"task": "reports:daily"})
        assert "<code>region</code>" in r.text and "<code>rows</code>" in r.text


async def test_a_user_sees_only_their_schedules_and_an_admin_all(dashboard: Dashboard) -> None:
    alice = await dashboard.signed_in("alice")
    bob = await dashboard.signed_in("bob")
    admin = await dashboard.signed_in("admin")
    async with alice, bob, admin:
        await _create(dashboard, alice, "alices-job")
        await _create(dashboard, bob, "bobs-job")
        a = (await alice.get("/schedules")).text
        assert "alices-job" in a and "bobs-job" not in a
        assert (await alice.get("/schedules/bobs-job")).status_code == 404
        page = await alice.get("/schedules/alices-job")
        r = await alice.post("/schedules/bobs-job/delete", data={"csrf": csrf_of(page.text)})
        assert r.status_code == 404
        assert await dashboard.scheduler.get_schedule("bobs-job")
        everything = (await admin.get("/schedules")).text
        assert "alices-job" in everything and "bobs-job" in everything


async def test_a_read_only_token_sees_no_write_control_and_cannot_write(
    dashboard: Dashboard,
) -> None:
    alice = await dashboard.signed_in("alice")
    reader = await dashboard.signed_in("reader")
    async with alice, reader:
        await _create(dashboard, alice, "nightly")
        for path in ("/", "/schedules", "/schedules/nightly"):
            html = (await reader.get(path)).text
            assert "nightly" in html
            for control in (
                ">Pause<",
                ">Resume<",
                ">Run now<",
                ">Edit<",
                ">Delete<",
                "New schedule",
                "Pause selected",
                'name="ids"',
            ):
                assert control not in html, (path, control)
        page = await reader.get("/schedules/nightly")
        r = await reader.post("/schedules/nightly/pause", data={"csrf": csrf_of(page.text)})
        assert r.status_code == 403
        assert not (await dashboard.scheduler.get_schedule("nightly")).paused


async def test_a_schedule_without_fire_times_says_why(dashboard: Dashboard) -> None:
    client = await dashboard.signed_in("alice")
    async with client:
        await _create(dashboard, client, "by-hand", schedule="manual")
        await _create(dashboard, client, "held")
        await dashboard.scheduler.pause("held")
        for sid, why in (
            ("by-hand", "None: a manual schedule runs only when started (Run now)."),
            ("held", "None: the schedule is paused."),
        ):
            page = (await client.get(f"/schedules/{sid}")).text
            found = re.search(r'<p class="muted" id="no-fires">([^<]*)</p>', page)
            assert found and unescape(found[1]) == why, sid


async def test_an_unchanged_edit_says_so_and_a_read_only_one_is_refused(
    dashboard: Dashboard,
) -> None:
    alice = await dashboard.signed_in("alice")
    reader = await dashboard.signed_in("reader")
    async with alice, reader:
        await _create(dashboard, alice, "nightly")
        for client, status, said in (
            (reader, 400, "this token is read-only: it may not change anything"),
            (alice, 303, None),
        ):
            form = (await client.get("/schedules/nightly/edit")).text
            r = await client.post("/schedules/nightly/edit", data=_form_fields(form))
            assert r.status_code == status
            if said is not None:
                assert said in unescape(r.text) and "Schedule saved" not in r.text
        page = (await alice.get(r.headers["location"])).text
        assert "Nothing to save: no field was changed." in page
        assert (await dashboard.scheduler.get_schedule("nightly")).version == 1


async def test_pause_with_a_reason_is_shown_then_resume(dashboard: Dashboard) -> None:
    client = await dashboard.signed_in("alice")
    async with client:
        await _create(dashboard, client, "nightly")
        page = await client.get("/schedules/nightly")
        r = await client.post(
            "/schedules/nightly/pause",
            data={"csrf": csrf_of(page.text), "reason": "vendor outage"},
        )
        assert r.status_code == 303
        page = await client.get("/schedules/nightly")
        assert 'id="pause-reason">vendor outage<' in page.text
        assert "by alice" in page.text
        assert ">Resume<" in page.text
        await client.post("/schedules/nightly/resume", data={"csrf": csrf_of(page.text)})
        page = await client.get("/schedules/nightly")
        assert 'id="pause-reason"' not in page.text and 'id="pause-note"' not in page.text
        assert not (await dashboard.scheduler.get_schedule("nightly")).paused
        assert "schedule.paused" in page.text and "schedule.resumed" in page.text  # history


async def test_bulk_pause_of_all_matching_the_filter(dashboard: Dashboard) -> None:
    client = await dashboard.signed_in("alice")
    async with client:
        for name in ("eu-1", "eu-2", "us-1"):
            await _create(dashboard, client, name)
        page = await client.get("/schedules", params={"q": "eu"})
        assert 'data-total="2"' in page.text
        form = {"csrf": csrf_of(page.text), "action": "pause", "scope": "filter", "q": "eu"}
        r = await client.post("/schedules", data=form)
        # Without the page's script nothing is done before the server's own confirmation.
        assert r.status_code == 200 and "Pause 2 schedules?" in r.text
        assert not any(s.paused for s in await dashboard.scheduler.list_schedules())
        r = await client.post("/schedules", data={**form, "confirmed": "1"})
        assert r.status_code == 303
        paused = {s.id for s in await dashboard.scheduler.list_schedules() if s.paused}
        assert paused == {"eu-1", "eu-2"}
        r = await client.post(
            "/schedules",
            data={
                "csrf": csrf_of(page.text),
                "action": "resume",
                "scope": "selected",
                "ids": ["eu-1"],
                "confirmed": "1",
            },
        )
        paused = {s.id for s in await dashboard.scheduler.list_schedules() if s.paused}
        assert paused == {"eu-2"}


async def test_edit_sends_only_what_changed_and_shows_save(dashboard: Dashboard) -> None:
    client = await dashboard.signed_in("alice")
    async with client:
        await _create(dashboard, client, "nightly")
        form = await client.get("/schedules/nightly/edit")
        assert form.status_code == 200 and ">Save<" in form.text and ">Create<" not in form.text
        assert 'value="0 2 * * *"' in form.text
        r = await client.post(
            "/schedules/nightly/edit",
            data={
                "csrf": csrf_of(form.text),
                "task": "reports:daily",
                "schedule": "15 4 * * *",
                "timezone": "Europe/Paris",
                "data": '{"region": "us"}',
                "name": "nightly",
                "retries": "5",
                "retry_delay": "5",
            },
        )
        assert r.status_code == 303, r.text
        s = await dashboard.scheduler.get_schedule("nightly")
        assert s.schedule == "15 4 * * *" and s.retry.max_attempts == 5
        page = await client.get("/schedules/nightly")
        assert "schedule.updated" in page.text
        r = await client.post(
            "/schedules/nightly/edit",
            data={
                "csrf": csrf_of(form.text),
                "task": "reports:daily",
                "schedule": "15 4 * * *",
                "timezone": "Mars/Olympus",
                "data": "{}",
            },
        )
        assert r.status_code == 400 and "Mars/Olympus" in unescape(r.text)


async def test_delete_and_backfill(dashboard: Dashboard) -> None:
    client = await dashboard.signed_in("alice")
    async with client:
        await _create(dashboard, client, "hourly", schedule="0 * * * *")
        page = await client.get("/schedules/hourly")
        assert 'data-confirm="Delete schedule hourly?' in page.text
        r = await client.post(
            "/schedules/hourly/backfill",
            data={
                "csrf": csrf_of(page.text),
                "start": "2026-03-01T00:00",
                "end": "2026-03-01T05:00",
            },
        )
        assert r.status_code == 303
        runs = await dashboard.scheduler.list_runs("hourly", limit=100)
        backfilled = sorted(r.scheduled_for.isoformat() for r in runs if r.trigger == "backfill")
        # Read in the schedule's zone (Europe/Paris, UTC+1 in March): 00:00-05:00 local.
        assert backfilled[0] == "2026-02-28T23:00:00+00:00" and len(backfilled) == 6
        r = await client.post(
            "/schedules/hourly/backfill",
            data={
                "csrf": csrf_of(page.text),
                "start": "2026-03-02T00:00",
                "end": "2026-03-01T00:00",
            },
        )
        # Refused on the page itself, the panel open with the range as typed.
        assert r.status_code == 400
        assert "end is before start" in unescape(r.text)
        assert 'value="2026-03-02T00:00"' in r.text and 'value="2026-03-01T00:00"' in r.text
        r = await client.post("/schedules/hourly/delete", data={"csrf": csrf_of(page.text)})
        assert r.status_code == 200 and "Delete schedule hourly?" in r.text  # asked first
        assert await dashboard.scheduler.get_schedule("hourly")
        r = await client.post(
            "/schedules/hourly/delete", data={"csrf": csrf_of(r.text), "confirmed": "1"}
        )
        assert r.status_code == 303 and r.headers["location"] == "/schedules"
        assert (await client.get("/schedules/hourly")).status_code == 404


async def test_cancel_a_waiting_run_asks_first_and_only_its_owner_may(
    dashboard: Dashboard,
) -> None:
    alice = await dashboard.signed_in("alice")
    bob = await dashboard.signed_in("bob")
    reader = await dashboard.signed_in("reader")
    async with alice, bob, reader:
        # A run waiting an hour for its second attempt.
        await _create(
            dashboard,
            alice,
            "later",
            task="demo:fail",
            data="{}",
            schedule="manual",
            retries="2",
            retry_delay="3600",
        )
        waiting = await dashboard.scheduler.run_now("later")
        for _ in range(200):
            if (await dashboard.scheduler.get_run(waiting.id)).status == "retrying":
                break
            await asyncio.sleep(0.05)
        page = f"/runs/{waiting.id}"
        html = (await alice.get(page)).text
        assert ">Cancel run<" in html and f'data-confirm="Cancel run {waiting.id}?' in html
        assert ">Cancel run<" not in (await reader.get(page)).text
        r = await reader.post(f"{page}/cancel", data={"csrf": csrf_of(html), "confirmed": "1"})
        assert r.status_code == 403
        other = (await bob.get("/runs")).text
        r = await bob.post(f"{page}/cancel", data={"csrf": csrf_of(other), "confirmed": "1"})
        assert r.status_code == 404
        r = await alice.post(f"{page}/cancel", data={"csrf": csrf_of(html)})
        assert r.status_code == 200 and f"Cancel run {waiting.id}?" in r.text  # asked first
        assert (await dashboard.scheduler.get_run(waiting.id)).status == "retrying"
        r = await alice.post(f"{page}/cancel", data={"csrf": csrf_of(html), "confirmed": "1"})
        assert r.status_code == 303 and r.headers["location"] == page
        assert (await dashboard.scheduler.get_run(waiting.id)).status == "cancelled"
        html = (await alice.get(page)).text
        assert "Run cancelled." in html and ">Cancel run<" not in html
        r = await alice.post(f"{page}/cancel", data={"csrf": csrf_of(html), "confirmed": "1"})
        assert r.status_code == 303
        assert "already over" in unescape((await alice.get(page)).text)


async def test_run_page_filters_and_downloads_logs(dashboard: Dashboard) -> None:
    client = await dashboard.signed_in("alice")
    async with client:
        await _create(dashboard, client, "nightly")
        run = await dashboard.scheduler.run_now("nightly", data={"rows": 4}, wait=True, timeout=20)
        assert run.status == "succeeded"
        page = await client.get(f"/runs/{run.id}")
        assert "building the us report" in page.text and "late rows" in page.text
        assert '"rows": 4' in unescape(page.text)
        page = await client.get(f"/runs/{run.id}", params={"level": "ERROR"})
        assert "late rows" in page.text and "building the us report" not in page.text
        page = await client.get(f"/runs/{run.id}", params={"q": "BUILDING"})
        assert "building the us report" in page.text and "late rows" not in page.text
        r = await client.get(f"/runs/{run.id}/logs.txt", params={"level": "ERROR"})
        assert r.headers["content-disposition"].startswith("attachment;")
        assert r.text.count("\n") == 1 and "ERROR reports [attempt 1] region us" in r.text
        bob = await dashboard.signed_in("bob")
        async with bob:
            assert (await bob.get(f"/runs/{run.id}")).status_code == 404
            assert (await bob.get(f"/runs/{run.id}/logs.txt")).status_code == 404


async def test_admin_pages_tokens_and_audit(dashboard: Dashboard) -> None:
    admin = await dashboard.signed_in("admin")
    alice = await dashboard.signed_in("alice")
    async with admin, alice:
        assert (await alice.get("/tokens")).status_code == 403
        assert (await alice.get("/audit")).status_code == 403
        assert ">Audit<" not in (await alice.get("/")).text
        page = await admin.get("/tokens")
        r = await admin.post(
            "/tokens",
            data={
                "csrf": csrf_of(page.text),
                "user": "carol",
                "role": "read-only",
                "expires": "30d",
            },
        )
        secret = re.search(r'<code id="new-secret">([^<]+)</code>', r.text)
        assert secret, r.text
        async with dashboard.client() as carol:
            r = await carol.post("/login", data={"token": secret[1], "next": "/"})
            assert r.status_code == 303
        tokens = await dashboard.scheduler.list_tokens()
        carols = next(t for t in tokens if t.user == "carol")
        assert carols.read_only and carols.expires_at is not None
        r = await admin.post(
            f"/tokens/{carols.id}/revoke", data={"csrf": csrf_of(page.text), "confirmed": "1"}
        )
        assert r.status_code == 303
        async with dashboard.client() as carol:
            r = await carol.post("/login", data={"token": secret[1], "next": "/"})
            assert r.status_code == 401
        audit = await admin.get("/audit", params={"target": f"token:{carols.id}"})
        assert "token.revoked" in audit.text and "token.created" in audit.text


async def test_bad_input_is_never_a_server_error(dashboard: Dashboard) -> None:
    admin = await dashboard.signed_in("admin")
    async with admin:
        await _create(dashboard, admin, "nightly")
        page = await admin.get("/schedules/nightly")
        csrf = csrf_of(page.text)
        gets = [
            "/schedules?page=abc&per_page=-5&sort=nope&dir=sideways&status=weird&q=%25_%5C",
            "/schedules?page=999999999999&per_page=100000",
            "/schedules/nightly?status=bogus&since=yesterday&until=2026-13-45&before=x|y",
            "/schedules/nightly?before=2026-01-01T00:00:00%2B00:00|zzz",
            "/runs?status=nope&task=%00&since=garbage&until=&before=%7C",
            "/runs/does-not-exist",
            "/runs/does-not-exist/logs.txt",
            "/schedules/does-not-exist/edit",
            "/audit?before=abc&actor=%00",
            "/ui/validate?schedule=0+0+*+*+*&timezone=Not/AZone",
            "/ui/validate?schedule=" + "9" * 5000,
            "/ui/check-data?task=nope&data=%7B",
            "/ui/task?task=",
            "/static/../../etc/passwd",
            "/static/nope.js",
        ]
        for path in gets:
            r = await admin.get(path)
            assert r.status_code < 500, (path, r.status_code, r.text[:300])
        posts = [
            ("/schedules/nightly/explode", {"csrf": csrf}),
            ("/schedules/nightly/run", {"csrf": csrf, "data": "[1, 2]"}),
            ("/schedules/nightly/run", {"csrf": csrf, "data": '{"nope": 1}'}),
            ("/schedules/nightly/backfill", {"csrf": csrf, "start": "soon", "end": "later"}),
            ("/schedules/nightly/pause", {"csrf": csrf, "reason": "x" * 10_000}),
            ("/schedules", {"csrf": csrf, "action": "explode", "scope": "filter"}),
            ("/schedules", {"csrf": csrf, "action": "pause", "scope": "selected"}),
            (
                "/schedules/new",
                {
                    "csrf": csrf,
                    "task": "nope",
                    "schedule": "every 0s",
                    "timezone": "X/Y",
                    "data": "{}",
                    "timeout": "-1",
                    "max_instances": "many",
                    "priority": "1e99",
                },
            ),
            ("/tokens", {"csrf": csrf, "user": "", "role": "admin", "expires": "forever"}),
            ("/tokens/does-not-exist/revoke", {"csrf": csrf}),
            ("/preferences", {"csrf": csrf, "time": "martian", "next": "//evil.example"}),
        ]
        for path, data in posts:
            r = await admin.post(path, data=data)
            assert r.status_code < 500, (path, r.status_code, r.text[:300])
            if r.status_code == 303:
                assert r.headers["location"].startswith("/"), path
                assert not r.headers["location"].startswith("//"), path


async def test_data_nested_too_deeply_to_read_is_named_not_a_server_error(
    dashboard: Dashboard,
) -> None:
    """JSON nested deeper than the parser goes (it raises RecursionError, not the
    ValueError of other bad JSON) is refused under the data field, as bad JSON is: by
    the schedule form, Run now and the data's live check."""
    deep = "[" * 100_000 + "]" * 100_000
    alice = await dashboard.signed_in("alice")
    async with alice:
        await _create(dashboard, alice, "nightly")
        form = {"task": "reports:daily", "schedule": "0 3 * * *", "timezone": "UTC", "data": deep}
        r = await post_form(alice, "/schedules/new", form)
        assert r.status_code == 400 and "nested too deeply" in r.text, r.text[-500:]
        r = await post_form(alice, "/schedules/nightly", {"data": deep}, "/schedules/nightly/run")
        assert r.status_code == 400 and "nested too deeply" in r.text, r.text[-500:]
        assert await dashboard.scheduler.list_runs("nightly") == []
        deep_query = "[" * 5_000 + "]" * 5_000
        r = await alice.get("/ui/check-data", params={"task": "reports:daily", "data": deep_query})
        assert r.status_code == 200 and "nested too deeply" in r.text, r.text
    # A flash cookie that is no message of ours (nested too deeply, say) shows none.
    async with dashboard.client() as browser:
        browser.cookies.set("tw_flash", base64.urlsafe_b64encode(b"[" * 3000).decode())
        assert (await browser.get("/login")).status_code == 200


async def test_the_edit_form_shows_start_and_end_in_the_schedules_zone(
    dashboard: Dashboard,
) -> None:
    client = await dashboard.signed_in("alice")
    async with client:
        await _create(
            dashboard,
            client,
            "tokyo",
            timezone="Asia/Tokyo",
            start_at="2030-01-02T03:04:05",
            end_at="2030-06-01T00:00:00",
        )
        form = (await client.get("/schedules/tokyo/edit")).text
        assert 'value="2030-01-02T03:04:05+09:00"' in form
        assert 'value="2030-06-01T00:00:00+09:00"' in form
        page = await client.get("/schedules/tokyo")
        r = await client.post(
            "/schedules/tokyo/edit",
            data={**_form_fields(form), "csrf": csrf_of(page.text)},
        )
        assert r.status_code == 303
        s = await dashboard.scheduler.get_schedule("tokyo")
        assert s.start_at is not None and s.start_at.isoformat() == "2030-01-01T18:04:05+00:00"
        assert s.version == 1  # sent back as shown, nothing changed


async def test_the_edit_form_shows_a_start_in_a_dst_gap_as_written(
    dashboard: Dashboard,
) -> None:
    """New York skips 02:00-02:59 on 2036-03-09. The form showed the first instant after
    the gap (03:00-04:00), so its preview listed 03:00 every day though the schedule
    fires at 02:30."""
    client = await dashboard.signed_in("alice")
    async with client:
        await _create(
            dashboard,
            client,
            "gap",
            schedule="every 1 day",
            timezone="America/New_York",
            start_at="2036-03-09T02:30",
        )
        form = (await client.get("/schedules/gap/edit")).text
        assert 'value="2036-03-09T02:30:00"' in form
        page = await client.get("/schedules/gap")
        r = await client.post(
            "/schedules/gap/edit", data={**_form_fields(form), "csrf": csrf_of(page.text)}
        )
        assert r.status_code == 303
        s = await dashboard.scheduler.get_schedule("gap")
        assert s.version == 1  # sent back as shown, nothing changed
        fires = await dashboard.scheduler.next_fire_times("gap", 2)
        assert [t.isoformat() for t in fires] == [
            "2036-03-09T03:00:00-04:00",
            "2036-03-10T02:30:00-04:00",
        ]


def _form_fields(html: str) -> dict[str, str]:
    """The values a form page would send as it is (text fields and selected options)."""
    fields = {
        m[1]: unescape(m[2])
        for m in re.finditer(r'<input[^>]* name="([^"]+)" value="([^"]*)"', html)
    }
    for m in re.finditer(r'<textarea[^>]* name="([^"]+)"[^>]*>([^<]*)</textarea>', html):
        fields[m[1]] = unescape(m[2])
    for m in re.finditer(r'<select[^>]* name="([^"]+)"[^>]*>(.*?)</select>', html, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected', m[2]) or re.search(
            r"<option[^>]* selected[^>]*>([^<]*)<", m[2]
        )
        if chosen:
            fields[m[1]] = unescape(chosen[1])
    return fields


async def test_timeout_and_retry_left_empty_are_the_nodes(dashboard: Dashboard) -> None:
    client = await dashboard.signed_in("alice")
    async with client:
        await _create(dashboard, client, "nightly")
        s = await dashboard.scheduler.get_schedule("nightly")
        assert set(s.node_defaults) == {"timeout", "retry"}
        assert "the executing node" in (await client.get("/schedules/nightly")).text
        base = {
            "task": "reports:daily",
            "schedule": "0 2 * * *",
            "timezone": "Europe/Paris",
            "data": '{"region": "us"}',
            "name": "nightly",
        }
        form = await client.get("/schedules/nightly/edit")
        assert 'name="timeout" value=""' in form.text
        r = await client.post(
            "/schedules/nightly/edit",
            data={**base, "csrf": csrf_of(form.text), "timeout": "60", "retries": "2"},
        )
        assert r.status_code == 303, r.text
        s = await dashboard.scheduler.get_schedule("nightly")
        assert s.timeout == 60 and s.retry.max_attempts == 2 and s.node_defaults == ()
        assert s.retry.delay == 5.0  # a partial retry policy is merged over the defaults
        form = await client.get("/schedules/nightly/edit")
        r = await client.post("/schedules/nightly/edit", data={**base, "csrf": csrf_of(form.text)})
        assert r.status_code == 303
        s = await dashboard.scheduler.get_schedule("nightly")
        assert set(s.node_defaults) == {"timeout", "retry"}


async def test_the_time_display_is_saved_for_the_user_not_the_browser(
    dashboard: Dashboard,
) -> None:
    def chosen(html: str) -> str:
        found = re.search(r'<option value="(\w+)" selected>', html)
        assert found, "no time display chosen"
        return found[1]

    made = await dashboard.scheduler.create_token("alice")  # her other token, elsewhere
    assert made is not None
    dashboard.tokens["alice-elsewhere"] = made[1]
    async with await dashboard.signed_in("alice") as here:
        page = (await here.get("/schedules")).text
        assert chosen(page) == "schedule"
        r = await here.post(
            "/preferences",
            data={"csrf": csrf_of(page), "time": "utc", "zone": "Asia/Tokyo", "next": "/tasks"},
        )
        assert r.status_code == 303 and r.headers["location"] == "/tasks"
        assert "tw_time" not in r.headers.get("set-cookie", "")
        assert chosen((await here.get("/schedules")).text) == "utc"
    async with await dashboard.signed_in("alice-elsewhere") as elsewhere:
        page = (await elsewhere.get("/schedules")).text
        assert chosen(page) == "utc"
        assert 'id="browser-zone" value="Asia/Tokyo"' in page
    async with await dashboard.signed_in("bob") as bob:
        assert chosen((await bob.get("/schedules")).text) == "schedule"
    assert dashboard.scheduler.store.user_settings("alice") == {
        "time_mode": "utc",
        "browser_zone": "Asia/Tokyo",
    }


async def test_a_refused_name_tag_or_description_is_named_on_the_form(
    dashboard: Dashboard,
) -> None:
    """The schedule's own checks (lengths, NUL) refuse these fields: the form says which
    and why, and keeps what was typed."""
    client = await dashboard.signed_in("alice")
    async with client:
        form = await client.get("/schedules/new")
        for field, value, said in (
            ("name", "N" * 1500, "1500 characters long"),
            ("name", "a\x00b", "NUL character"),
            ("tags", "t" * 1200, "1200 characters long"),
            ("description", "D" * 10050, "10050 characters long"),
        ):
            r = await client.post(
                "/schedules/new",
                data={
                    "csrf": csrf_of(form.text),
                    "task": "reports:daily",
                    "schedule": "0 2 * * *",
                    "timezone": "UTC",
                    "data": "{}",
                    field: value,
                },
            )
            assert r.status_code == 400, field
            error = re.search(rf'<p class="error" id="{field}-err"[^>]*>([^<]*)</p>', r.text)
            assert error and said in unescape(error[1]), (field, r.text[-3000:])
            if "\x00" not in value:
                assert f'value="{value}"' in r.text  # what was typed stays
        assert await dashboard.scheduler.list_schedules() == []


def _data_error(html: str) -> str:
    """The error shown under the form's Data field ("" when there is none)."""
    found = re.search(r'<p class="error" id="data-error"[^>]*>([^<]*)</p>', html)
    return found[1] if found else ""


async def test_data_of_the_wrong_type_is_named_under_the_data_field(dashboard: Dashboard) -> None:
    """``reports:daily`` takes ``rows: int``: the form says so under Data as it is typed,
    when it is sent (create and edit), and when a run is started with such data."""
    client = await dashboard.signed_in("alice")
    said = "data.rows must be an integer, not the string &#39;many&#39;"
    async with client:
        r = await client.get("/ui/task", params={"task": "reports:daily"})
        assert "<code>rows</code> (int, default 3)" in r.text
        assert '<code>region</code> (str, default "eu")' in r.text
        r = await client.get(
            "/ui/check-data", params={"task": "reports:daily", "data": '{"rows": "many"}'}
        )
        assert said in r.text and "Data fits the task" not in r.text
        fields = {"task": "reports:daily", "schedule": "0 2 * * *", "timezone": "UTC"}
        r = await post_form(client, "/schedules/new", fields | {"data": '{"rows": "many"}'})
        assert r.status_code == 400
        assert said in _data_error(r.text), r.text[-3000:]
        assert await dashboard.scheduler.list_schedules() == []
        await _create(dashboard, client, "nightly")
        r = await post_form(
            client,
            "/schedules/nightly/edit",
            fields | {"timezone": "Europe/Paris", "data": '{"region": "us", "rows": "many"}'},
        )
        assert r.status_code == 400
        assert said in _data_error(r.text), r.text[-3000:]
        page = await client.get("/schedules/nightly")
        r = await client.post(
            "/schedules/nightly/run", data={"csrf": csrf_of(page.text), "data": '{"rows": "many"}'}
        )
        assert r.status_code == 400 and said in r.text
        assert (await dashboard.scheduler.get_schedule("nightly")).data == {"region": "us"}
        assert await dashboard.scheduler.list_runs("nightly") == []


async def test_a_wrong_value_inside_the_data_is_named_by_its_path(dashboard: Dashboard) -> None:
    """``reports:daily`` takes ``limits: dict[str, list[int]] | None``: the form shows that
    type, and a string among the integers is named by its path under Data, as it is
    typed and when the form is sent."""
    client = await dashboard.signed_in("alice")
    data = '{"limits": {"eu": [1, 2], "us": [3, "x"]}}'
    said = "data.limits.us[1] must be an integer, not the string &#39;x&#39;"
    async with client:
        r = await client.get("/ui/task", params={"task": "reports:daily"})
        assert "<code>limits</code> (dict[str, list[int]] | None, default null)" in r.text
        r = await client.get("/ui/check-data", params={"task": "reports:daily", "data": data})
        assert said in r.text and "Data fits the task" not in r.text
        r = await post_form(
            client,
            "/schedules/new",
            {"task": "reports:daily", "schedule": "0 2 * * *", "timezone": "UTC", "data": data},
        )
        assert r.status_code == 400
        assert said in _data_error(r.text), r.text[-3000:]
        assert await dashboard.scheduler.list_schedules() == []


async def test_a_refused_run_now_keeps_the_data_typed(dashboard: Dashboard) -> None:
    client = await dashboard.signed_in("alice")
    async with client:
        await _create(dashboard, client, "nightly")
        page = await client.get("/schedules/nightly")
        for typed, said in (
            ('{"region": eu}', "not valid JSON"),
            ("[1, 2]", "must be a JSON object"),
            ('{"nope": 1}', "takes no argument 'nope'"),
        ):
            r = await client.post(
                "/schedules/nightly/run", data={"csrf": csrf_of(page.text), "data": typed}
            )
            assert r.status_code == 400, typed
            text = unescape(r.text)
            assert said in text
            assert re.search(r"<details open>\s*<summary>Run now with data", r.text)
            assert f">{typed}</textarea>" in text
        assert await dashboard.scheduler.list_runs("nightly") == []


async def test_a_live_refresh_without_a_session_sends_the_page_to_sign_in(
    dashboard: Dashboard,
) -> None:
    """htmx follows redirects itself: a 303 to the sign-in page would be swapped into
    the page's live parts; it gets a 401 telling it to load the sign-in page instead,
    with the page it was on to come back to."""
    async with dashboard.client() as client:
        r = await client.get(
            "/schedules?q=x",
            headers={
                "HX-Request": "true",
                "HX-Current-URL": "http://testserver/schedules?q=x&page=2",
            },
        )
        assert r.status_code == 401
        assert r.headers["hx-redirect"] == "/login?next=%2Fschedules%3Fq%3Dx%26page%3D2"
        r = await client.get(
            "/", headers={"HX-Request": "true", "HX-Current-URL": "https://evil.example//x"}
        )
        assert r.headers["hx-redirect"] == "/login?next=%2F"


async def test_a_log_lines_time_is_in_the_zone_of_the_pages_other_times(
    dashboard: Dashboard,
) -> None:
    """The schedule is in Europe/Paris: its run's times and its log lines' times are
    written there, and in UTC when the user chose UTC."""
    client = await dashboard.signed_in("alice")
    async with client:
        await _create(dashboard, client, "nightly")
        run = await dashboard.scheduler.run_now("nightly", wait=True, timeout=20)
        assert run.logs
        page = await client.get(f"/runs/{run.id}")
        for mode, zone in (("schedule", "Europe/Paris"), ("utc", "UTC")):
            for record in run.logs:
                at = record.at.astimezone(UTC)
                local = at.astimezone(ZoneInfo(zone)).strftime("%H:%M:%S.%f")[:-3]
                assert f'<time datetime="{at.isoformat()}" data-clock>{local}</time>' in page.text
            if mode == "schedule":
                await client.post(
                    "/preferences", data={"csrf": csrf_of(page.text), "time": "utc", "next": "/"}
                )
                page = await client.get(f"/runs/{run.id}")


async def test_lists_of_runs_show_each_run_in_its_schedules_zone(dashboard: Dashboard) -> None:
    """The runs page and the overview's latest failures write a run's time as its own
    page does: in its schedule's zone (in UTC when the user chose UTC)."""
    client = await dashboard.signed_in("alice")
    async with client:
        await _create(
            dashboard,
            client,
            "in-tokyo",
            task="demo:fail",
            timezone="Asia/Tokyo",
            data="{}",
            retries="1",
        )
        run = await dashboard.scheduler.run_now("in-tokyo", wait=True, timeout=20)
        assert run.status == "failed"
        at = run.scheduled_for.astimezone(UTC)
        tokyo = at.astimezone(ZoneInfo("Asia/Tokyo")).strftime("%Y-%m-%d %H:%M:%S JST")
        utc = at.strftime("%Y-%m-%d %H:%M:%S UTC")
        page = await client.get("/runs")
        assert f'<time datetime="{at.isoformat()}">{tokyo}</time>' in page.text
        overview = await client.get("/")
        assert f'<time datetime="{at.isoformat()}">{tokyo}</time>' in overview.text
        await client.post("/preferences", data={"csrf": csrf_of(page.text), "time": "utc"})
        page = await client.get("/runs")
        assert f'<time datetime="{at.isoformat()}">{utc}</time>' in page.text


async def test_the_runs_date_filter_is_read_in_the_zone_times_are_shown_in(
    dashboard: Dashboard,
) -> None:
    """Times shown in the browser's zone: a day typed in the runs' filter is that day
    there, and the filter says which zone it reads."""

    def shown(html: str) -> list[str]:
        return re.findall(r'<time datetime="([^"]+)"', html.split('id="runs"', 1)[1])

    async with await dashboard.signed_in("alice") as alice:
        await _create(dashboard, alice, "hourly", schedule="0 * * * *", timezone="UTC")
        await dashboard.scheduler.backfill(
            "hourly", "2026-03-01T00:00:00+00:00", "2026-03-02T12:00:00+00:00"
        )
        page = (await alice.get("/runs")).text
        assert "From (UTC)" in page
        r = await alice.get("/runs", params={"since": "2026-03-01", "until": "2026-03-01"})
        times = shown(r.text)
        assert len(times) == 24 and times[0].startswith("2026-03-01T23:00")
        await alice.post(
            "/preferences",
            data={"csrf": csrf_of(page), "time": "browser", "zone": "America/Los_Angeles"},
        )
        r = await alice.get("/runs", params={"since": "2026-03-01", "until": "2026-03-01"})
        assert "From (America/Los_Angeles)" in r.text
        times = shown(r.text)
        # 2026-03-01 in Los Angeles (UTC-8): 08:00 UTC that day to 07:00 UTC the next.
        assert len(times) == 24
        assert times[0].startswith("2026-03-02T07:00") and times[-1].startswith("2026-03-01T08:00")


async def test_the_task_help_and_the_tasks_page_show_each_default(dashboard: Dashboard) -> None:
    """What an argument left out of the data will be, as JSON (what Data takes)."""
    client = await dashboard.signed_in("alice")
    async with client:
        r = await client.get("/ui/task", params={"task": "reports:daily"})
        assert '<code>region</code> (str, default "eu")' in r.text
        assert "<code>rows</code> (int, default 3)" in r.text
        r = await client.get("/ui/task", params={"task": "demo:steps"})
        assert "<code>gate</code> (str, required)" in r.text
        r = await client.get("/tasks")
        assert '<code>region: str = "eu"</code>' in r.text
        assert "<code>gate: str</code>*" in r.text


def test_the_preview_lists_an_interval_from_its_first_fire_now() -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    first = validation_preview("every 1h", "UTC")["next"][0]
    after = datetime.now(UTC)
    assert before <= datetime.strptime(first, "%Y-%m-%d %H:%M:%S UTC").replace(tzinfo=UTC) <= after


def test_the_preview_keeps_a_start_wall_time_in_a_dst_gap() -> None:
    # New York skips 02:00-02:59 on 2036-03-09: 02:30 fires first at 03:00, then at 02:30.
    preview = validation_preview("every 1 day", "America/New_York", "2036-03-09T02:30")
    assert preview["next"][:2] == ["2036-03-09 03:00:00 EDT", "2036-03-10 02:30:00 EDT"]
    assert "at 02:30" in preview["description"]


def test_a_schedule_is_described_from_its_own_start() -> None:
    s = Schedule(
        id="d",
        task="t",
        schedule="every 1 day",
        timezone="America/New_York",
        start_at=datetime(2026, 3, 2, 14, 15, tzinfo=UTC),
        anchor=datetime(2026, 3, 2, 14, 15, tzinfo=UTC),
    )
    # It was described from the moment the page was drawn, at that time of day.
    assert describe_schedule(s) == "Every day at 09:15, from 2026-03-02 (America/New_York)"
