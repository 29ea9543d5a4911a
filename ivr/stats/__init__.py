"""Live figures of the center: today's queue and agent statistics for the wallboard
(``ivr.stats.live``) and the Prometheus metrics (``ivr.stats.metrics``)."""
