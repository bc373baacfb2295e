"""Signing in: passwords with lockout, the second factor, single sign-on, and the API's expiring tokens."""
