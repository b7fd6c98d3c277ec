"""`python -m sim`: the same as `trident sim`."""

import sys

from sim.cli import main

sys.exit(main())
