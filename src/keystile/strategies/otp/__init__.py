"""Passwordless sign-in with a short one-time code sent by email or SMS."""
