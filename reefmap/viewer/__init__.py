"""Looking at a map: the Open3D window and snapshots, and the QC video."""
