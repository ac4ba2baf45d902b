"""Password sign-in with Argon2id."""
