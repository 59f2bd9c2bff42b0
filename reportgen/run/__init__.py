"""A run's orchestration: the pipeline, re-rendering, comparisons of runs and verification."""
