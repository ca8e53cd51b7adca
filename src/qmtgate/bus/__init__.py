"""Publishing the hub's stream to a NATS bus (JetStream optional): see docs/nats.md and ``publisher``."""
