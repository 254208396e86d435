"""The dashboard's router: every page, form action, fragment and file, in match order."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request

from tickwork.web import actions, live, pages, signin, static_files


def no_nul(request: Request) -> None:
    """A NUL character in the address is nobody's search: refused before any page reads it
    (PostgreSQL cannot even compare text with one)."""
    if "\x00" in str(request.url.path) or any(
        "\x00" in k or "\x00" in v for k, v in request.query_params.multi_items()
    ):
        raise HTTPException(400, "a NUL character in the address")


router = APIRouter(dependencies=[Depends(no_nul)])
router.include_router(static_files.router)
router.include_router(signin.router)
router.include_router(live.router)
router.include_router(actions.router)  # before pages: /schedules/new before /schedules/{id}
router.include_router(pages.router)
