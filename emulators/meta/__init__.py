"""Local Meta Graph API emulator: Facebook Pages (Messenger DMs, Page comments), Instagram (DMs, comments) and
the WhatsApp Cloud API in one server, pushing signed webhooks, with a control API for tests.

    from emulators.meta import MetaEmulator
    emu = MetaEmulator(port=0).start()
    page = emu.add_page("1001", webhook_url="http://127.0.0.1:8000/webhooks/meta/1")  # GET handshake first
    emu.dm("1001", "my laptop won't boot", name="Ann")    # pushes a signed Messenger webhook
    Graph(base_url=emu.base_url, token=page["token"])     # base_url = http://127.0.0.1:PORT/v25.0

Client API (``MetaEmulatorClient``; ``MetaEmulator`` is one too). Stable: tests and adapter helpers use it.

    base_url -> str                                   url + "/v25.0" (any v<major>.<minor> is served)
    reset() -> None
    add_page(page_id=None, name="IT Help", token=None, app_secret=None, verify_token=None, webhook_url=None,
             human_agent=True, handshake=True) -> dict      account: id, token, app_secret, verify_token,
                                                            webhook_url, handshake {passed, status, body}
    add_instagram(page_id, ig_user_id=None, username="ithelp", name="IT Help", verify_token=None,
                  webhook_url=None, human_agent=True, handshake=True) -> dict   (the Page's token and secret)
    add_whatsapp(phone_number_id=None, waba_id=None, display_phone_number="15550001234",
                 verified_name="IT Help", token=None, app_secret=None, verify_token=None, webhook_url=None,
                 handshake=True) -> dict
    accounts() -> list[dict]
    set_webhook(account_id, url, handshake=True) -> {"url", "handshake"}
    dm(account_id, text="", sender_id=None, name=None, username=None, attachments=(), at=None)
        -> {"mid", "sender_id", "conversation_id", "timestamp", "attachment_urls", "push_id"}
    edit_dm(account_id, mid, text); unsend_dm(account_id, mid)        (unsend: Instagram only)
    react(account_id, mid, sender_id, emoji="❤️", remove=False)
    add_post(account_id, text="", at=None) -> {"id", ...}             (a Page post or an Instagram media item)
    comment(account_id, post_id, text, sender_id=None, name=None, username=None, parent_id=None, at=None)
        -> {"comment_id", "post_id", "parent_id", "sender_id", "timestamp", "push_id"}
    edit_comment(account_id, comment_id, text); remove_comment(account_id, comment_id)   (Page comments)
    whatsapp(account_id, text="", wa_id=None, name=None, type="text", content=None, mime_type=None,
             filename=None, caption=None, voice=False, reply_to=None, at=None)
        -> {"wamid", "wa_id", "media_id", "timestamp", "push_id"}
    whatsapp_react(account_id, wa_id, wamid, emoji="👍"); whatsapp_edit(account_id, wa_id, wamid, text);
    whatsapp_revoke(account_id, wa_id, wamid)
    fail_next_whatsapp(account_id, code=131026, count=1)
    add_template(waba_id, name, body, language="en_US", category="UTILITY", status="APPROVED") -> dict
    sent(account_id=None) -> list[dict]               what the business sent (kind dm, private_reply,
                                                      comment_reply, whatsapp), oldest first
    webhooks(account_id=None) -> {"pushes", "attempts", "pending", "drop_next"}; pushed(account_id=None)
    push_raw(account_id, body) -> str                 any body (a recorded fixture), signed and retried
    drop_webhooks(count=1) -> int; wait_for_webhooks(timeout=10.0) -> bool
    configure_webhooks(retry_delays=None, timeout=None) -> dict
    set_receipts(enabled=None, sent_delay=None, delivered_delay=None, read_delay=None) -> dict
    revoke_token(token, expired=False); restore_token(token)
    set_budget(scope, calls, window_seconds=3600); set_usage(scope, percent, regain_minutes=0); usage()
    fault(endpoint, status=500, code=None, message=None, count=1); fault_after_write(endpoint, delay=0,
          reset=False, count=1); clear_faults(); stats()
    start_storm(...), stop_storm(), storm_stats()     (emulators.common)

Control routes (``/_emulator/``): POST reset, accounts/page, accounts/instagram, accounts/whatsapp, webhook,
dms, dms/edit, dms/unsend, dms/react, posts, comments, comments/edit, comments/remove, whatsapp,
whatsapp/react, whatsapp/edit, whatsapp/revoke, whatsapp/fail, templates, webhooks/push, webhooks/drop,
webhooks/wait, webhooks/config, receipts, tokens, usage/budget, usage, faults, faults/after_write, storm;
GET accounts, sent, webhooks, usage, stats, storm; DELETE faults, storm.

Graph API (``/{version}/...``, token as ``Authorization: Bearer`` or ``access_token``): GET /{id} (Page,
Instagram user, phone number, WABA, conversation, message, post, media, comment, WhatsApp media, and a person
who wrote to a Page or Instagram account: the User Profile API's name, first_name, last_name, username);
GET /{page-id}/conversations?platform=messenger|instagram&user_id=, /{conversation-id}/messages,
/{page-id}/posts|feed|published_posts, /{ig-user-id}/media, /{post-id}/comments (filter, order),
/{fb-comment-id}/comments, /{ig-media-id}/comments, /{ig-comment-id}/replies, /{waba-id}/message_templates,
/{waba-id}/phone_numbers; POST /{page-id}/messages, /{ig-user-id}/messages, /{fb-comment-id}/comments,
/{post-id}/comments, /{ig-comment-id}/replies, /{phone-number-id}/messages, /{phone-number-id}/media.
Files: GET /cdn/{id}/{name} (DM attachments, public like Meta's signed CDN URLs) and
GET /whatsapp_business/attachments/?mid={media-id} (bearer token of the owning number).

Behaviour worth knowing:
- after each business DM, Messenger pushes ``delivery`` then ``read`` (watermark = the reply's time) and
  Instagram a ``read`` naming the ``mid`` (Instagram has no delivery events); after each WhatsApp send,
  ``statuses`` sent, delivered, read; delays 0/0.05/0.1 s by default (``set_receipts``), off with
  ``enabled=False``; a send armed with ``fail_next_whatsapp`` gets one ``failed`` status instead;
- usage: every answer has ``X-App-Usage`` (and ``X-Business-Use-Case-Usage`` for the account's calls),
  counted in sliding windows; a spent ``set_budget`` answers code 4 (app), 80001/80002/80007 (Page,
  Instagram, WhatsApp business account) or 613 (an endpoint) with ``Retry-After``; ``set_usage`` pins a figure;
- a failed push (non-2xx, timeout, refused) is retried after each of ``webhook_retry_delays`` with the same
  signed bytes, without holding back later pushes; ``webhooks()`` shows each push's outcome and attempts.

Simplifications against the real Meta:
- one app: the accounts' tokens are the only valid ones; an Instagram account uses its linked Page's token;
  app secret proofs are not checked; permissions are all granted except Human Agent when switched off;
- a WhatsApp send outside the 24 h window is refused at once (131047) instead of a later ``failed`` status;
- only the HUMAN_AGENT message tag is known; Messenger has no ``message_echoes``, no postbacks or referrals;
- Instagram comments cannot be edited and their deletion sends no webhook (as on Instagram);
- webhook retries are compressed into seconds (Meta: up to 36 h, WhatsApp 7 days); pushes carry one entry;
- time comes from ``time.time()`` (time-machine moves it); ``at`` backdates what people do.
"""

from .client import GRAPH_VERSION, EmulatorControlError, MetaEmulatorClient
from .server import MetaEmulator

__all__ = ["GRAPH_VERSION", "EmulatorControlError", "MetaEmulator", "MetaEmulatorClient"]
