"""The organizers' baseline algorithm as it is, for benchmarks and tests; not in the inference path."""
