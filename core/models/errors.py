"""Errors a user can act on: each names the file or model and what is wrong."""


class ModelLoadError(Exception):
    """A model could not be loaded: missing, corrupt or wrong-shaped files, or no network."""
