"""The errors the local store and the CLI report, grouped by whose fault they are."""

from __future__ import annotations


class ShoplistError(Exception):
    """A failure the user is shown as one line; `exit_code` is what the CLI exits with."""

    exit_code = 1


class UsageError(ShoplistError):
    """The user's command line is wrong whatever is stored: a bad quantity, an empty or too long name."""

    exit_code = 2


class ListNotFoundError(ShoplistError):
    """The user named a list (or an item) that this replica does not hold."""


class AmbiguousListError(ShoplistError):
    """The user's list reference matches more than one list; the message lists the candidates."""


class CorruptStateError(ShoplistError):
    """Stored bytes do not decode: the data on disk was damaged (or written by a buggy release)."""


class EnvironmentProblem(ShoplistError):
    """The machine is in the way: the home is not writable, PostgreSQL will not start or answer."""


class HomeNotWritableError(EnvironmentProblem):
    """The home directory cannot be created or written."""


class ServerStartError(EnvironmentProblem):
    """The bundled PostgreSQL server failed to start; the message quotes its log."""


class SchemaTooNewError(EnvironmentProblem):
    """The home was last used by a newer Shoplist whose schema this release does not know."""
