"""Distillation of SwiftMedSAM students from LiteMedSAM on the CPU (not part of the inference image)."""
