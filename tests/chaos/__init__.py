"""Chaos tests: real processes, real signals, a real Redis; what they measure goes into docs/reliability.md."""
