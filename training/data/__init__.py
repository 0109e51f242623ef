"""Training data: motion banks from real speech, pose perturbations, synthetic clips, shards,
torch datasets, and the personal-video path."""
