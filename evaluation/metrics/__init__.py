"""Scoring: DeepMind's surface distances, the organisers' per-label rules, folders, the metrics CSV."""
