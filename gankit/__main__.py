"""``python -m gankit`` (and ``torchrun -m gankit``)."""

import sys

from gankit.cli import main

sys.exit(main())
