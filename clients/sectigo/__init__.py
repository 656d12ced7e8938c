"""Generated code of the sectigo-svc APIs, one subpackage per API and major version."""
