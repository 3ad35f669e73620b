"""The screening engine: pure and synchronous; text in, findings out (imports only the domain)."""
