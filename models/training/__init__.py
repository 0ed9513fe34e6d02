"""Training of gait networks: OpenGait-style recipe, deterministic sampling, exact resume."""
