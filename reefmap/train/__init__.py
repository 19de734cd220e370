"""Training: datasets, losses and loops for the segmentation and depth/pose networks."""
