"""Operator tools over the streams of both groups: retention, dead letters, export/import, info."""
