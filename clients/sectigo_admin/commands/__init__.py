"""The ``sectigo`` subcommands, one module per resource of the Sectigo API."""
