"""The schedule reads answered before FastAPI's routing (``tickwork.api.quick_reads``)
give exactly what the routes give: the same bytes and headers for a 200, and every
other answer from the route itself."""

from __future__ import annotations

import httpx

from tests.api.conftest import Server
from tickwork.api.quick_reads import list_query

_SAME_HEADERS = ("content-type", "content-length", "etag")


def _same(a: httpx.Response, b: httpx.Response) -> None:
    assert (a.status_code, a.content) == (b.status_code, b.content)
    assert [a.headers.get(h) for h in _SAME_HEADERS] == [b.headers.get(h) for h in _SAME_HEADERS]


def test_list_query_takes_only_what_it_reads_as_fastapi_does() -> None:
    assert list_query(b"") == {}
    assert list_query(b"limit=50&status=paused&q=&cursor=xyz&task=x&tag=t&owner=o") == {
        "limit": 50, "status": "paused", "q": "", "cursor": "xyz", "task": "x", "tag": "t",
        "owner": "o",
    }  # fmt: skip
    for passed_on in (
        b"limit=0", b"limit=501", b"limit=-1", b"limit=+5", b"limit=5.0", b"limit= 5",
        b"limit=abc", b"status=gone", b"limit=5&limit=6", b"colour=red",
        b"task=", b"tag=", b"owner=",  # blank filters: the route refuses them
    ):  # fmt: skip
        assert list_query(passed_on) is None, passed_on


def test_quick_answers_are_the_routes_answers(db_server: Server) -> None:
    c = db_server.admin
    for k in range(5):
        body = {"id": f"s{k}", "task": "api:echo", "schedule": "0 3 * * *", "tags": ["x"]}
        assert c.post("/schedules", json=body).status_code == 201
    assert c.post("/schedules/s1/pause").status_code == 200
    # Two Authorization headers (the first one counts) send a read through the route.
    token = f"Bearer {db_server.admin_token}"
    twice = [("Authorization", token), ("Authorization", "x")]
    raw = httpx.Client(base_url=db_server.api, timeout=30)
    for query in ("limit=2", "limit=2&cursor=" + c.get("/schedules?limit=2").json()["next_cursor"],
                  "status=paused&limit=50", "tag=x&q=S3&limit=50", "limit=50"):  # fmt: skip
        quick = c.get(f"/schedules?{query}")
        routed = raw.get(f"/schedules?{query}", headers=twice)
        assert quick.status_code == 200
        _same(quick, routed)
    _same(c.get("/schedules/s1"), raw.get("/schedules/s1", headers=twice))
    raw.close()


def test_everything_but_a_200_is_the_routes_answer(db_server: Server) -> None:
    c = db_server.admin
    assert c.post("/schedules", json={"id": "mine", "task": "api:echo", "schedule": "5m"})
    bob = db_server.client(db_server.user_token("bob"))
    for client, path, status in (
        (bob, "/schedules/mine", 404),  # another user's: as a missing one
        (c, "/schedules/nope", 404),
        (db_server.client(""), "/schedules/mine", 401),
        (db_server.client("tw_forged"), "/schedules", 401),
        (c, "/schedules?limit=0", 422),
        (c, "/schedules?limit=abc", 422),
        (c, "/schedules?status=gone", 422),
        (c, "/schedules?cursor=nonsense", 422),
        (c, "/schedules?staus=paused", 422),  # a typo: not every schedule, unfiltered
    ):
        r = client.get(path)
        assert r.status_code == status, (path, r.text)
        assert set(r.json()) == {"error"}, r.text
    assert bob.get("/schedules").json() == {"items": [], "next_cursor": None}
