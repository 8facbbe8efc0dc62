"""Serving: ``medsyn serve`` (the embedded model behind an OpenAI-compatible engine) and loopback test engines."""
