"""What spans strategies: sessions, the two-step sign-in, step-up."""
