"""Alembic environment and revisions for the GaitID database."""
