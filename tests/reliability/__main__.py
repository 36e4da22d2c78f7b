import sys

from tests.reliability.run import main

sys.exit(main())
