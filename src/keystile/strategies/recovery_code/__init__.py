"""Single-use recovery codes: the fallback second factor when the authenticator is lost."""
