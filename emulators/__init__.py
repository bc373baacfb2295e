"""Local loopback emulators of the chat platforms the helpdesk talks to."""
