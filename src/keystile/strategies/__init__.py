"""One package per strategy: config (frozen, validated), core (pure), service, routes."""
