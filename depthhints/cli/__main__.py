"""``python -m depthhints.cli``: the ``depthhints`` command."""

import sys

from depthhints.cli import main

if __name__ == "__main__":
    sys.exit(main())
