"""The ASGI middlewares. They import no web framework."""
