"""``python -m server.cli``: the same as the ``flowai`` command."""

import sys

from server.cli.main import main

# Guarded: a process started with ``spawn`` (compaction's merge worker) imports this module
# again as ``__mp_main__`` and must not start a second server.
if __name__ == "__main__":
    sys.exit(main())
