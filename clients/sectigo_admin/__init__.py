"""``sectigo``: the operators' command for looking straight at the Sectigo IoT Manager API."""
