"""Networks: the U-Net segmenter, the depth and pose networks, and their weights format."""
