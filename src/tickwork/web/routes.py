"""The dashboard's router: every page, form action, fragment and file, in match order.

Each part's routes are made with ``tickwork.web.address.DashboardRoute``, which refuses
an address holding a NUL character with a dashboard page or fragment."""

from __future__ import annotations

from fastapi import APIRouter

from tickwork.web import actions, api_docs, live, pages, signin, static_files, tokens

router = APIRouter()
router.include_router(static_files.router)
router.include_router(api_docs.router)
router.include_router(signin.router)
router.include_router(live.router)
router.include_router(tokens.router)
router.include_router(actions.router)  # before pages: /schedules/new before /schedules/{id}
router.include_router(pages.router)
