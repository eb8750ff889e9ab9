"""Where item vectors live, so the clusterer can find an item's nearest clustered neighbours."""
