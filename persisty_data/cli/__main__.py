"""``python -m persisty_data.cli``: the same as the ``persisty-data`` console script."""

import sys

from persisty_data.cli.main import main

sys.exit(main())
