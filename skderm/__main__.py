import sys

from skderm.cli import main

sys.exit(main())
