"""Live streams: read cameras continuously, identify people as they walk, emit and deliver events."""
