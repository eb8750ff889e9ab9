"""What every producer shares: the ingest API client, batching, retries, throttling and the loop."""
