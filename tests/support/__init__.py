"""Test helpers: real redis-server processes and real HTTP servers on free loopback ports."""
