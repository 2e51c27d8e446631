"""Tools for developing otel-resilience; not part of the shipped wheel."""
