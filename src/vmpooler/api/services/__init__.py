"""What the API does, once for every version: the services the routes call (no HTTP in here)."""
