"""Networks on frames: segmentation and depth/pose inference, the transect-tape detector, labelled-frame streams, synthetic-truth oracle."""
