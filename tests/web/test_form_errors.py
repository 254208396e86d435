"""A refused dashboard form names every bad field at once, each under its own field,
and keeps what was typed: the schedule form (new and edit), the token form, and a
backfill's range. Plain posts, as a browser without the page's script sends them."""

from __future__ import annotations

import re
from html import unescape

import httpx

from tests.web.conftest import Dashboard, post_form


def field_error(html: str, error_id: str) -> str:
    """The text of the error shown with id ``error_id``; "" when there is none."""
    found = re.search(rf'<(?:p|span) class="error" id="{error_id}"[^>]*>([^<]*)</(?:p|span)>', html)
    return unescape(found[1]) if found else ""


async def _new_form(client: httpx.AsyncClient, **fields: str) -> httpx.Response:
    return await post_form(client, "/schedules/new", fields)


async def _made(client: httpx.AsyncClient, schedule_id: str, expression: str) -> None:
    """A schedule of ``reports:daily`` made through the form, for a test to change."""
    r = await _new_form(
        client,
        task="reports:daily",
        schedule=expression,
        timezone="UTC",
        data="{}",
        id=schedule_id,
    )
    assert r.status_code == 303, r.text[-3000:]


async def test_every_bad_field_of_a_new_schedule_is_named_at_once(dashboard: Dashboard) -> None:
    """The form's own checks (an expression, a number) and the schedule's (a length, an
    instant, a range, the data's types) all answer in one post."""
    client = await dashboard.signed_in("alice")
    async with client:
        typed = {
            "task": "reports:daily",
            "schedule": "61 * * * *",
            "timezone": "Europe/Paris",
            "data": '{"rows": "many"}',
            "name": "N" * 1500,
            "start_at": "2026-13-40T09:00",
            "priority": "5000000",
            "retries": "0",
            "timeout": "-1",
            "jitter": "1e12",
        }
        r = await _new_form(client, **typed)
        assert r.status_code == 400
        expected = {
            "schedule-error": "minute 61 out of range",
            "data-error": "data.rows must be an integer, not the string 'many'",
            "name-err": "1500 characters long",
            "start_at-err": "start_at '2026-13-40T09:00' is not an ISO-8601 date-time",
            "priority-err": "priority must be an integer from -1000000 to 1000000",
            "retries-err": "must be at least 1",
            "timeout-err": "must be at least 0.001",
            "jitter-err": "jitter must be",
        }
        for error_id, said in expected.items():
            assert said in field_error(r.text, error_id), (error_id, r.text[-4000:])
        text = unescape(r.text)
        assert f"Not saved: {len(expected)} fields to correct, each named below." in text
        assert 'name="priority" aria-invalid="true" value="5000000"' in r.text
        for name in ("start_at", "priority", "retries", "timeout", "jitter"):
            assert f'value="{typed[name]}"' in r.text, name  # what was typed stays
        assert '>{"rows": "many"}</textarea>' in text
        assert await dashboard.scheduler.list_schedules() == []


async def test_an_unknown_task_and_a_bad_zone_and_range_are_named_together(
    dashboard: Dashboard,
) -> None:
    client = await dashboard.signed_in("alice")
    async with client:
        r = await _new_form(
            client,
            task="reports:weekly",
            schedule="0 2 * * *",
            timezone="Mars/Olympus",
            data="{}",
            id="has spaces",
            start_at="2026-05-02T00:00",
            end_at="2026-05-01T00:00",
        )
        assert r.status_code == 400
        assert "unknown task 'reports:weekly'; known tasks: " in field_error(r.text, "task-err")
        assert "reports:daily" in field_error(r.text, "task-err")
        assert "Mars/Olympus" in field_error(r.text, "timezone-err")
        assert field_error(r.text, "id-err").startswith("id ")
        assert field_error(r.text, "end_at-err") == "end_at is before start_at"
        assert await dashboard.scheduler.list_schedules() == []
        # The same zone with a start, checked as it is typed: the zone is named.
        r = await client.get(
            "/ui/validate",
            params={"schedule": "1h", "timezone": "Mars/Olympus", "start_at": "2026-05-01T00:00"},
        )
        assert r.status_code == 200 and "unknown time zone 'Mars/Olympus'" in unescape(r.text)
        # The right ones are then accepted.
        r = await _new_form(
            client,
            task="reports:daily",
            schedule="0 2 * * *",
            timezone="Europe/Paris",
            data="{}",
            id="fixed",
            start_at="2030-05-01T00:00",  # a window to come: one in the past never fires
            end_at="2030-05-02T00:00",
        )
        assert r.status_code == 303, r.text[-3000:]


async def test_every_bad_field_of_an_edit_is_named_at_once(dashboard: Dashboard) -> None:
    client = await dashboard.signed_in("alice")
    async with client:
        await _made(client, "nightly", "0 2 * * *")
        r = await post_form(
            client,
            "/schedules/nightly/edit",
            {
                "task": "reports:daily",
                "schedule": "0 2 * * *",
                "timezone": "UTC",
                "data": '{"nope": 1}',
                "description": "D" * 10050,
                "start_at": "2026-06-02T00:00",
                "end_at": "2026-06-01T00:00",
                "max_instances": "100000000",
                "retry_delay": "1e15",
            },
        )
        assert r.status_code == 400
        assert "takes no argument 'nope'" in field_error(r.text, "data-error")
        assert "10050 characters long" in field_error(r.text, "description-err")
        assert field_error(r.text, "end_at-err") == "end_at is before start_at"
        assert "max_instances must be" in field_error(r.text, "max_instances-err")
        assert "retry.delay must be" in field_error(r.text, "retry_delay-err")
        assert 'value="2026-06-02T00:00"' in r.text and 'value="1e15"' in r.text
        s = await dashboard.scheduler.get_schedule("nightly")
        assert s.data == {} and s.start_at is None and s.description == ""


async def test_every_bad_field_of_the_token_form_is_named_at_once(dashboard: Dashboard) -> None:
    admin = await dashboard.signed_in("admin")
    async with admin:
        before = await dashboard.scheduler.list_tokens()
        r = await post_form(admin, "/tokens", {"user": "", "role": "root", "expires": "forever"})
        assert r.status_code == 400
        assert field_error(r.text, "user-err") == "name the user the token acts as"
        assert field_error(r.text, "role-err") == "one of user, read-only, admin"
        assert "forever" in field_error(r.text, "expires-err")
        assert "Token not created: 3 fields to correct" in r.text
        assert 'value="forever"' in r.text
        for lifetime in ("9999y", "99999999999999d"):
            r = await post_form(
                admin, "/tokens", {"user": "carol", "role": "read-only", "expires": lifetime}
            )
            assert r.status_code == 400, lifetime
            assert field_error(r.text, "user-err") == ""
            assert lifetime in field_error(r.text, "expires-err")
            assert 'value="carol"' in r.text
            assert re.search(r'<option value="read-only" selected>', r.text)
        assert await dashboard.scheduler.list_tokens() == before
        # The dashboard reads a lifetime as the CLI and the REST API do (months too).
        r = await post_form(admin, "/tokens", {"user": "carol", "role": "user", "expires": "1mo"})
        assert r.status_code == 200 and 'id="new-secret"' in r.text


async def test_both_ends_of_a_bad_backfill_range_are_named(dashboard: Dashboard) -> None:
    client = await dashboard.signed_in("alice")
    async with client:
        await _made(client, "hourly", "0 * * * *")
        r = await post_form(
            client,
            "/schedules/hourly",
            {"start": "soon", "end": ""},
            to="/schedules/hourly/backfill",
        )
        assert r.status_code == 400
        assert "start 'soon' is not an ISO-8601 date-time" in field_error(r.text, "bf-start-err")
        assert field_error(r.text, "bf-end-err") == "To: give the end of the range"
        assert 'value="soon"' in r.text
        assert await dashboard.scheduler.list_runs("hourly") == []


async def test_a_backfill_of_a_manual_schedule_says_why_in_its_panel(
    dashboard: Dashboard,
) -> None:
    client = await dashboard.signed_in("alice")
    async with client:
        await _made(client, "by-hand", "manual")
        window = {"start": "2026-01-01T00:00:00", "end": "2026-01-02T00:00:00"}
        r = await post_form(client, "/schedules/by-hand", window, to="/schedules/by-hand/backfill")
        assert r.status_code == 400
        assert field_error(r.text, "backfill-err") == (
            "Backfill: schedule 'by-hand' is manual: it has no fire times to backfill"
            " (run it now instead)"
        )
        assert 'value="2026-01-01T00:00:00"' in r.text
        assert await dashboard.scheduler.list_runs("by-hand") == []
