"""Developer and operator tools around the service: the `trident` dispatcher, ctl, demo, send, synthetic signals, a private redis-server."""
