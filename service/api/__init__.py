"""The REST API: FastAPI app, schemas, authentication and routes under /v1."""
