"""Database access: tables, engine and sessions, migrations, repositories."""
