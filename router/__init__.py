"""Two-stage, superclass-routed classification and the ``supersub`` command line."""

__all__: list[str] = []
