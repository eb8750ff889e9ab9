"""The ingest HTTP API: validates a request's shape, appends the raw event, answers 202."""
