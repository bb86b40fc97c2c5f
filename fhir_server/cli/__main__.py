"""``python -m fhir_server.cli``: the ``evi-fhir`` command."""

import sys

from fhir_server.cli import main

sys.exit(main())
