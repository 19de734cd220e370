"""The run: the process pipeline, its first pass for the camera path, resume checkpoints, batches of transects (local or Ray)."""
