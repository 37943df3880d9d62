"""``python -m fsaops``: the ``fsaops`` command line."""

from __future__ import annotations

import sys

from fsaops.console import main

if __name__ == "__main__":
    sys.exit(main())
