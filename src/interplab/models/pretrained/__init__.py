"""Real pretrained models loaded offline from PyPI packages (optional extras).

Nothing here imports heavy packages or reads files at import time; see :mod:`.registry`."""
