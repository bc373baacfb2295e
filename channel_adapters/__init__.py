"""Channel adapters: each platform's wire protocol, and nothing else.

One module per platform, each a ``ChannelAdapter`` (``base.py``: the contract, the envelope, the errors).
Adapters import no Django app, no ORM and no cache: the pipeline (``channels_ingest``) builds them from a
channel's config, secrets and state, and stores what they return.
"""
