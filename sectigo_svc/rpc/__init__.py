"""The gRPC face of the service: interceptors, the servicer, and the server that hosts them."""
