"""Plugins from ``.py`` files, importable by name in any process.

A recipe's ``plugins: [parts.py]`` is imported as the module
``gankit.core.fileplugins.parts__<hex of the file's absolute path>``. The
name carries the path, so another process (a DataLoader worker started by
the fork server, a torchrun rank, a resumed run) that unpickles a class
defined in the file imports it by the same name: importing this module
installs the finder that turns such a name back into the file.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.util
import re
import sys
from pathlib import Path

PREFIX = __name__
__path__: list[str] = []  # makes this module the parent package of the file plugins' modules


def module_name(path: str | Path) -> str:
    """The module name of the plugin file at ``path`` (made absolute)."""
    path = Path(path).resolve()
    stem = re.sub(r"\W", "_", path.stem) or "plugin"
    return f"{PREFIX}.{stem}__{str(path).encode('utf-8').hex()}"


def path_of(name: str) -> Path:
    """The file behind a :func:`module_name`."""
    token = name[len(PREFIX) + 1:].rpartition("__")[2]
    return Path(bytes.fromhex(token).decode("utf-8"))


def sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if not fullname.startswith(PREFIX + "."):
            return None
        try:
            file = path_of(fullname)
        except ValueError:
            return None
        if not file.is_file():
            return None
        return importlib.util.spec_from_file_location(fullname, file)


if not any(isinstance(f, _Finder) for f in sys.meta_path):
    sys.meta_path.append(_Finder())
