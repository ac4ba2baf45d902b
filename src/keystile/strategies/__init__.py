"""One package per strategy: config (frozen, validated), core (pure), service (I/O), routes (HTTP)."""
