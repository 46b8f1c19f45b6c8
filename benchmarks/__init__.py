"""Benchmarks: each module measures s3auth_asgi side by side with a peer in one run."""
