"""Helpers for tests and benchmarks: a fake ARI server speaking real HTTP and WebSocket, a throw-away
PostgreSQL server."""
