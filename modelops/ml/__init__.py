"""Plain-Python model pipeline: no Django imports, so it can be tested and benchmarked alone."""
