"""Input: video files and GoPro chapters as frames, camera profiles and self-calibration, GoPro telemetry."""
