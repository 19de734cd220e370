"""The synthetic reef: a procedural seabed mesh, a diver's camera path, an underwater renderer and exact truth."""
