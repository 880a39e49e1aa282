"""`python -m node.api > docs/openapi.json`: print the OpenAPI document built from the route table."""

import sys

from node.api.openapi import main

sys.exit(main())
