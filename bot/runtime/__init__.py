"""The running bot: pipeline, lifecycle, rule reload, ingest, HTTP, notifications, settings."""
