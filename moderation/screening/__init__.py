"""Watched-word screening: normalisation, matching, and the screener and recorder that
the moderation package registers with :mod:`core.screening`."""
