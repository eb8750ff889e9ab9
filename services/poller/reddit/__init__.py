"""The Reddit poller: listings to the ingest API."""
