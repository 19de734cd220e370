"""Process-level helpers every stage uses: loading Open3D, handing freed memory back, timing stages."""
