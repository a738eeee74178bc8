"""Timing: one case per fresh container (or local command), wall clock and peak memory, the runtime CSV."""
