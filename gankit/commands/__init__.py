"""One module per ``gankit`` command (see :mod:`gankit.cli`)."""
