"""TOTP second factor (RFC 6238): codes, verification, enrolment URI and QR, sealed secrets."""
