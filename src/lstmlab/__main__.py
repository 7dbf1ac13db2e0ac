"""`python -m lstmlab ...` (and `torchrun ... -m lstmlab ...`): the command line."""

import sys

from lstmlab.cli import main

sys.exit(main())
