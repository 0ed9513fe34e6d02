"""Speed benchmarks, one module per stage, run through ``gaitid bench STAGE``; each prints a table."""
