"""The shared web layer: request ids, authentication, rate limits, the webhook pipeline."""
