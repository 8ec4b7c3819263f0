"""What a dataset's items depend on: the one description caches and provenance use."""

from __future__ import annotations

from pathlib import Path
from typing import Any

_FREE_FORM = ("root", "split", "download")  # root and split are the identity on their own; download changes no file


def dataset_identity(data) -> dict[str, Any]:
    """A recipe's ``data`` section as what its images depend on.

    ``{dataset, root (resolved), split, transform: {image_size, channels, other arguments}}``;
    whether files may be downloaded does not change them, so it is left out.
    """
    args = dict(data.args)
    root = args.get("root")
    return {
        "dataset": data.name,
        "root": str(Path(root).expanduser().resolve()) if isinstance(root, str) else root,
        "split": args.get("split"),
        "transform": {
            "image_size": data.image_size,
            "channels": data.channels,
            **{k: v for k, v in sorted(args.items()) if k not in _FREE_FORM},
        },
    }
