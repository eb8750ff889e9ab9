"""Offline text embedders for the clusterer: they work without network access or torch."""
