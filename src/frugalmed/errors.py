"""Exceptions whose messages tell the user what is wrong and what to do."""


class FrugalmedError(RuntimeError):
    """Base class: a problem the user can fix (bad input, bad config, missing credentials)."""


class ConfigError(FrugalmedError, ValueError):
    """A config value is wrong; the message names the key."""

    def __init__(self, key: str, problem: str) -> None:
        self.key = key
        super().__init__(f"config key '{key}': {problem}")
