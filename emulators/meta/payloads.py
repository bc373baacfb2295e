"""Webhook bodies, shaped like the recorded ones in /work/shared/fixtures/meta.

Messenger/Instagram messaging events go in ``entry[].messaging[]`` (times in ms), Page feed and Instagram
comment changes in ``entry[].changes[]`` (times in s), WhatsApp in ``entry[].changes[].value`` (times as
strings of seconds). The deprecated Messenger ``seq`` and WhatsApp's business-scoped ``user_id`` /
``parent_user_id`` are left out.
"""

from .store import Account, Comment, Message, Person, millis, now

# -- envelopes -----------------------------------------------------------------------------------


def messaging_body(account: Account, event: dict) -> dict:
    return {
        "object": account.webhook_object,
        "entry": [{"id": account.id, "time": millis(now()), "messaging": [event]}],
    }


def changes_body(account: Account, field: str, value: dict) -> dict:
    entry = {"id": account.id, "time": int(now()), "changes": [{"field": field, "value": value}]}
    return {"object": account.webhook_object, "entry": [entry]}


def whatsapp_body(account: Account, value: dict) -> dict:
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": account.display_phone_number, "phone_number_id": account.id},
        **value,
    }
    entry = {"id": account.waba_id, "changes": [{"value": value, "field": "messages"}]}
    return {"object": "whatsapp_business_account", "entry": [entry]}


# -- Messenger and Instagram DMs -----------------------------------------------------------------


def _between(account: Account, person_id: str, timestamp: float) -> dict:
    return {"sender": {"id": person_id}, "recipient": {"id": account.id}, "timestamp": millis(timestamp)}


def dm_message(account: Account, message: Message) -> dict:
    body: dict = {"mid": message.id}
    if message.text:
        body["text"] = message.text
    if message.attachments:
        body["attachments"] = [{"type": a.type, "payload": {"url": a.url}} for a in message.attachments]
    return messaging_body(account, {**_between(account, message.from_id, message.created), "message": body})


def dm_edit(account: Account, message: Message, edited_at: float) -> dict:
    edit = {"mid": message.id, "text": message.text, "num_edit": message.num_edit}
    return messaging_body(account, {**_between(account, message.from_id, edited_at), "message_edit": edit})


def dm_unsend(account: Account, message: Message, deleted_at: float) -> dict:
    unsent = {"mid": message.id, "is_deleted": True}
    return messaging_body(account, {**_between(account, message.from_id, deleted_at), "message": unsent})


def dm_reaction(account: Account, person_id: str, mid: str, emoji: str, action: str, at: float) -> dict:
    reaction = {"reaction": "love" if emoji == "❤️" else "other", "emoji": emoji, "action": action, "mid": mid}
    return messaging_body(account, {**_between(account, person_id, at), "reaction": reaction})


def dm_delivery(account: Account, person_id: str, mids: list[str], watermark: float) -> dict:
    # As webhook__delivery.json: no event timestamp, the watermark says up to when.
    event = {
        "sender": {"id": person_id},
        "recipient": {"id": account.id},
        "delivery": {"mids": mids, "watermark": millis(watermark)},
    }
    return messaging_body(account, event)


def dm_read(account: Account, person_id: str, watermark: float, mid: str) -> dict:
    """Messenger says up to when (``watermark``); Instagram names the message seen (``mid``)."""
    read = {"watermark": millis(watermark)} if account.kind == "page" else {"mid": mid}
    return messaging_body(account, {**_between(account, person_id, now()), "read": read})


# -- comments --------------------------------------------------------------------------------------


def feed_comment(account: Account, comment: Comment, author: Person | Account, verb: str, at: float) -> dict:
    """A Page feed change for a comment (``verb`` add, edited or remove), as change__feed_comment_*.json."""
    value: dict = {"from": {"id": author.id, "name": author.name}}
    if verb == "remove":
        value["from"] = {"id": author.id}
    value.update(
        item="comment",
        comment_id=comment.id,
        post_id=comment.post_id,
        verb=verb,
        parent_id=comment.parent_id or comment.post_id,
        created_time=int(at),
    )
    if verb != "remove":
        value["message"] = comment.text
    return changes_body(account, "feed", value)


def instagram_comment(account: Account, comment: Comment, author: Person | Account) -> dict:
    """An Instagram ``comments`` change with ``from`` and ``media`` (Meta's reference; the recorded dashboard
    test, change__comments_dashboard_test.json, has only id and text)."""
    username = author.username if isinstance(author, Person) else account.username
    value: dict = {
        "from": {"id": author.id, "username": username},
        "media": {"id": comment.post_id, "media_product_type": "FEED"},
        "id": comment.id,
    }
    if comment.parent_id:
        value["parent_id"] = comment.parent_id
    value["text"] = comment.text
    return changes_body(account, "comments", value)


# -- WhatsApp --------------------------------------------------------------------------------------


def whatsapp_contact(person: Person) -> dict:
    return {"profile": {"name": person.name}, "wa_id": person.id}


def whatsapp_message(account: Account, person: Person, message: dict) -> dict:
    return whatsapp_body(account, {"contacts": [whatsapp_contact(person)], "messages": [message]})


def whatsapp_status(
    account: Account,
    wamid: str,
    person: Person,
    status: str,
    at: float,
    errors: list | None = None,
    callback_data: str | None = None,
) -> dict:
    """A ``statuses[]`` item for our message ``wamid`` (sent, delivered, read or failed), as status__*.json; with the
    ``biz_opaque_callback_data`` the message was sent with, which WhatsApp hands back in each of its statuses."""
    item: dict = {"id": wamid, "status": status, "timestamp": str(int(at)), "recipient_id": person.id}
    if callback_data is not None:
        item["biz_opaque_callback_data"] = callback_data
    if errors:
        item["errors"] = errors
    else:
        conversation: dict = {"id": "c" + wamid.rsplit(".", 1)[-1][:30].replace("/", "_").replace("+", "-")}
        if status == "sent":  # only the first status of a conversation tells when it expires
            conversation["expiration_timestamp"] = str(int(at + 24 * 3600))
        conversation["origin"] = {"type": "service"}
        item["conversation"] = conversation
        item["pricing"] = {"billable": True, "pricing_model": "CBP", "category": "service"}
    return whatsapp_body(account, {"contacts": [whatsapp_contact(person)], "statuses": [item]})
