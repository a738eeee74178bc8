"""Side-by-side speed measurements: the baseline algorithm against our default path, each case a fresh process."""
