"""Durable jobs: enrollment and identification work, its database record, and the runners."""
