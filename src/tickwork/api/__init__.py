"""The REST API of ``tickwork serve`` (FastAPI): see ``app.create_app``."""
