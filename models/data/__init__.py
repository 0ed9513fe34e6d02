"""Gait dataset readers: silhouette sequences with subject, condition and view labels."""
