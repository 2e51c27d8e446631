"""``otel-resilience demo``: a seeded service whose breakers trip and whose retries storm."""
