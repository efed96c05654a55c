"""What operators see of a running Dropp: Prometheus metrics at /metrics."""
