"""Evaluation protocols: CASIA-B cross-view rank-1, generic retrieval metrics, open-set thresholds."""
