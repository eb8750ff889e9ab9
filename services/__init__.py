"""The Soulcaster processes: ingest (API and worker), clusterer, Reddit poller, GitHub sync."""
