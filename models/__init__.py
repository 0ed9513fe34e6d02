"""Gait networks, OpenGait checkpoint import, runtime backends and the model registry.

This package knows nothing about HTTP or databases: it turns silhouette sequences
(uint8 ``[N, 64, 64]``) into embeddings (float32 ``[256, 16]``).
"""
