"""HTTP only: routers validate requests against the wire contract and call services."""
