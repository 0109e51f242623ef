"""Podium training: data, models, distillation and export (PyTorch; the optional train extra)."""
