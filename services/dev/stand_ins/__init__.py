"""Stand-ins for what the services talk to, shared by tests/ and bench/ (neither imports the other).

Real servers on 127.0.0.1 that speak Gemini's and Upstash Vector's REST wire formats, the scripted
HTTP server under them, and feedback items written the way the ingest worker leaves them. Only
tests and benches use them; the product never imports this package (it is not installed with it).
"""
