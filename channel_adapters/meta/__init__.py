"""Meta's platforms on the Graph API: Facebook Pages (Messenger and comments), Instagram, WhatsApp."""
