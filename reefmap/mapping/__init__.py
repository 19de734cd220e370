"""Fusion of labelled depth maps into a voxel map with per-voxel class votes."""
