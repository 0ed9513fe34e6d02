"""From video to per-person silhouette sequences: decode, detect and track, segment, normalize.

This package knows nothing about HTTP, databases or FAISS. Its output is the silhouette
sequence contract: uint8 ``[N, 64, 64]`` per walking person, as OpenGait's pretreatment makes it.
"""
