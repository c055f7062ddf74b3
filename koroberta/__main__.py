import sys

from koroberta.cli import main

sys.exit(main())
