"""Access control: hashed scoped API keys, lockout after repeated failures, token-bucket rate limits and
certificate fingerprint pinning for clients. See docs/security.md."""
