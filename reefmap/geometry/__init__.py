"""Pure geometry: back-projection, rigid transforms and pose chaining (numpy, documented units)."""
