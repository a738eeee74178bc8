"""Reporting: metrics joined with runtimes into the per-modality leaderboard, its files and figures."""
