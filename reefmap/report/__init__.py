"""Benthic cover and the files that report it."""
