"""The floor for ``benchmarks/api.py``: the cheapest FastAPI endpoint, served by uvicorn
the way ``tickwork serve`` serves (one process, default settings)."""

from __future__ import annotations

from fastapi import FastAPI

app = FastAPI()


@app.get("/ping")
async def ping() -> dict[str, bool]:
    return {"ok": True}
