"""Plumbing the runtime stands on: metrics, logs, health, Redis link, backoff, queue, state."""
