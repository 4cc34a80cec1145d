"""Every error the lab raises on purpose, in one module with no heavy imports: each message is
meant for the user as it is (the CLI prints it after `error:`, the app shows it in one box)."""


class ConfigError(ValueError):
    """A value in a RunConfig that cannot be run; the message says which and why."""


class DataError(ValueError):
    """A task or file that cannot be used; the message says what is wrong with it."""


class ModelError(RuntimeError):
    """A model that cannot be loaded; the message is meant for the user as it is."""


class RunError(RuntimeError):
    """A run that cannot go on, with a message meant for the user (out of memory, bad value...)."""


class RunStopped(Exception):
    """The user stopped the run; nothing is stored."""


class QueueFull(ConfigError):
    """Refused at submission, like a bad value, with nothing queued: the browser already has as many
    runs waiting as one may queue, or the server's whole queue is at its cap (core.jobs.MAX_QUEUED)."""
