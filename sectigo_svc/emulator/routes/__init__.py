"""API route handlers, one module per resource of the Sectigo API."""
