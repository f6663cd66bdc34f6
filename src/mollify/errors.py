"""The one exception type that carries a message meant for the user."""


class MollifyError(Exception):
    """Bad input a user can fix: the message names what is wrong and how to fix it."""
