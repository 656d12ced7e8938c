"""Where certificate requests, issued certificates and the audit trail are kept."""
