"""Command modules of the ``dxl`` CLI, one per area; each exposes ``register(app)``."""
