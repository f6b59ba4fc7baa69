"""The modules package's participant-facing error (re-exported by ``modules.services``)."""


class ModuleError(ValueError):
    """A participant-facing problem; the message can be shown as it is."""
