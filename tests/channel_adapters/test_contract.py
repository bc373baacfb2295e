"""One contract every adapter passes (like Django's mail backend tests)."""

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import PurePosixPath

import pytest

from channel_adapters import locmem
from channel_adapters.base import (
    AdapterError,
    Capability,
    ChannelAdapter,
    ConfigError,
    Envelope,
    EnvelopeKind,
    InboundAttachment,
    InvalidWebhook,
    OutboundFile,
    PermanentError,
    PollPage,
    ReplyTarget,
    Sent,
)
from channel_adapters.email.adapter import EmailAdapter
from channel_adapters.meta.facebook import FacebookAdapter
from channel_adapters.meta.instagram import InstagramAdapter
from channel_adapters.meta.whatsapp import WhatsAppAdapter
from channel_adapters.slack import SlackAdapter
from channel_adapters.x import XAdapter
from channels_ingest.mail_transport import give_transport
from channels_ingest.registry import adapter_class
from tests.channel_adapters.email_mail import DESK, email_config, mail
from tests.factories import message
from tests.helpers import PushInbox


class AdapterContract:
    """What every adapter does. Subclasses provide ``adapter`` (credentials valid), ``add_inbound(texts)``
    and ``raw_config``, and add the contracts below for what their platform offers.

    ``inbound(adapter)`` is what the platform has for the adapter now: a poll from an empty cursor, unless the
    platform only pushes (``PushOnlyContract``)."""

    @staticmethod
    def inbound(adapter) -> list[Envelope]:
        return [e for page in adapter.poll({}) for e in page.envelopes]

    def test_is_registered_by_kind(self, adapter):
        assert adapter_class(adapter.kind) is type(adapter)
        assert isinstance(adapter, ChannelAdapter)

    def test_split_config_keeps_secrets_out_of_config(self, raw_config, adapter):
        config, secrets = type(adapter).split_config(raw_config)
        assert set(secrets) <= set(type(adapter).secret_fields)
        assert not set(config) & set(type(adapter).secret_fields)
        assert json.dumps(config)

    def test_check_credentials_returns_json_state(self, adapter):
        assert isinstance(json.loads(json.dumps(adapter.check_credentials())), dict)

    def test_poll_yields_unique_envelopes_and_json_cursors(self, adapter, add_inbound):
        if Capability.POLL not in adapter.capabilities:
            pytest.skip(f"{adapter.kind} cannot be polled (PushOnlyContract checks its webhooks instead)")
        add_inbound(["one", "two", "three"])
        pages = list(adapter.poll({}))
        assert all(isinstance(page, PollPage) for page in pages)
        envelopes = [e for page in pages for e in page.envelopes]
        assert sorted(e.text for e in envelopes) == ["one", "three", "two"]
        assert len({e.external_id for e in envelopes}) == 3
        for envelope in envelopes:
            assert envelope.kind == EnvelopeKind.MESSAGE
            assert envelope.sender
            assert envelope.sent_at.tzinfo
            assert Envelope.from_json(json.loads(json.dumps(envelope.to_json()))) == envelope
        final = json.loads(json.dumps(pages[-1].cursor))
        assert not [e for page in adapter.poll(final) for e in page.envelopes]

    def reply_target(self, adapter, add_inbound):
        add_inbound(["help"])
        envelope = self.inbound(adapter)[0]
        target = ReplyTarget(
            thread_key=envelope.thread_key,
            reply_to=envelope.external_id,
            reply_to_meta=envelope.meta,
            recipient=envelope.sender.external_id,
        )
        [mode, *_] = [m for m in adapter.reply_modes(target) if m.allowed]
        return ReplyTarget(**{**vars(target), "mode": mode.key})

    def test_send_returns_the_platform_message_id(self, adapter, add_inbound):
        sent = adapter.send(target=self.reply_target(adapter, add_inbound), text="on it", key="reply-1")
        assert isinstance(sent, Sent)
        assert sent.external_id

    def test_a_sent_reply_is_found_where_the_platform_can_look(self, adapter, add_inbound):
        """After an unknown outcome the pipeline asks ``find_sent``; an adapter that cannot look says so."""
        target = self.reply_target(adapter, add_inbound)
        since = datetime.now(UTC) - timedelta(seconds=1)
        if not adapter.finds_sent:
            with pytest.raises(NotImplementedError):
                adapter.find_sent(target=target, text="on it", key="reply-1", since=since)
            return
        assert adapter.find_sent(target=target, text="on it", key="reply-1", since=since) is None
        sent = adapter.send(target=target, text="on it", key="reply-1")
        assert adapter.find_sent(target=target, text="on it", key="reply-1", since=since) == sent
        assert adapter.find_sent(target=target, text="on it too", key="reply-2", since=since) is None

    def test_reply_modes_name_their_limits(self, adapter, add_inbound):
        add_inbound(["help"])
        envelope = self.inbound(adapter)[0]
        modes = adapter.reply_modes(ReplyTarget(thread_key=envelope.thread_key, reply_to_meta=envelope.meta))
        assert modes
        assert all(m.max_length > 0 and m.label for m in modes)
        assert adapter.reply_length("hello", modes[0].key) == 5


class InboundFilesContract:
    """Messages carry files. Subclasses provide ``add_inbound_file(text, name, content, content_type)``,
    returning the name and declared size the adapter should report, and ``inbound_file``: a file
    (name, content type) the platform carries."""

    inbound_file = ("report.pdf", "application/pdf")

    def test_inbound_files_are_described_and_fetched_by_their_ref(self, adapter, add_inbound_file):
        content = bytes(range(256)) * 300  # several download chunks
        name, content_type = self.inbound_file
        expected_name, expected_size = add_inbound_file("see attached", name, content, content_type)
        [envelope] = self.inbound(adapter)
        [attachment] = envelope.attachments
        assert (attachment.name, attachment.content_type, attachment.size) == (
            expected_name,
            content_type,
            expected_size,
        )
        assert Envelope.from_json(json.loads(json.dumps(envelope.to_json()))) == envelope
        assert b"".join(adapter.fetch_attachment(attachment.ref)) == content

    def test_fetching_an_unknown_file_fails_as_an_adapter_error(self, adapter, add_inbound_file):
        name, content_type = self.inbound_file
        add_inbound_file("see attached", name, b"abc", content_type)
        [envelope] = self.inbound(adapter)
        with pytest.raises(AdapterError):
            b"".join(adapter.fetch_attachment(envelope.attachments[0].ref + "-gone"))


class OutboundFilesContract:
    """Replies carry files: one ``send_attachment`` per file after the text, or, where the platform's post holds
    both (``files_with_text``, an email), the files handed to ``send`` with the text."""

    def test_modes_that_carry_files_send_them(self, adapter, add_inbound):
        add_inbound(["help"])
        envelope = self.inbound(adapter)[0]
        target = ReplyTarget(
            thread_key=envelope.thread_key,
            reply_to=envelope.external_id,
            reply_to_meta=envelope.meta,
            recipient=envelope.sender.external_id,
        )
        carrying = [m for m in adapter.reply_modes(target) if m.allowed and m.attachments]
        assert carrying, "this adapter's replies carry no files: test that send_attachment refuses instead"
        for mode in carrying:
            assert mode.attachments.max_files > 0
            assert mode.attachments.max_bytes > 0
            target = ReplyTarget(**{**vars(target), "mode": mode.key})
            file = OutboundFile("log.txt", "text/plain", b"line\n")
            if adapter.files_with_text:
                sent = adapter.send(target=target, text="the log you asked for", key="reply-1", files=(file,))
                assert sent.external_id
                continue
            adapter.send(target=target, text="the log you asked for", key="reply-1")
            file_id = adapter.send_attachment(target=target, file=file)
            assert isinstance(file_id, str)
            assert file_id


class PushOnlyContract:
    """A platform with no API to read messages (WhatsApp): they arrive only by webhook. Subclasses provide
    ``inbound(adapter)``: the envelopes of the webhooks the platform pushed since the last call."""

    def test_cannot_be_polled_and_says_so_for_admins(self, adapter):
        assert Capability.POLL not in adapter.capabilities
        assert Capability.WEBHOOK in adapter.capabilities
        assert type(adapter).polling_limits(adapter.config)

    def test_pushed_messages_become_unique_envelopes(self, adapter, add_inbound):
        add_inbound(["one", "two", "three"])
        envelopes = self.inbound(adapter)
        assert sorted(e.text for e in envelopes) == ["one", "three", "two"]
        assert len({e.external_id for e in envelopes}) == 3
        for envelope in envelopes:
            assert envelope.kind == EnvelopeKind.MESSAGE
            assert envelope.sender
            assert envelope.sent_at.tzinfo
            assert Envelope.from_json(json.loads(json.dumps(envelope.to_json()))) == envelope
        assert self.inbound(adapter) == []


class WebhookContract:
    def test_unsigned_webhook_is_refused(self, adapter):
        with pytest.raises(InvalidWebhook) as refused:
            adapter.handle_webhook(headers={}, body=b"{}")
        assert refused.value.status in (401, 403)


class TestLocmemAdapter(AdapterContract, InboundFilesContract, OutboundFilesContract, WebhookContract):
    @pytest.fixture
    def raw_config(self):
        return {"inbox": "c", "webhook_secret": "s"}

    @pytest.fixture
    def adapter(self, raw_config):
        config, secrets = locmem.LocmemAdapter.split_config(raw_config)
        return locmem.LocmemAdapter(config=config, secrets=secrets)

    @pytest.fixture
    def add_inbound(self):
        def add(texts):
            locmem.inbox["c"] = [message(f"m{i}", text=text) for i, text in enumerate(texts)]

        return add

    @pytest.fixture
    def add_inbound_file(self):
        def add(text, name, content, content_type):
            locmem.files["ref-1"] = content
            attachment = InboundAttachment(name=name, content_type=content_type, size=len(content), ref="ref-1")
            locmem.inbox["c"] = [replace(message("m0", text=text), attachments=(attachment,))]
            return name, len(content)

        return add


class TestLocmemAdapterThatLooks(TestLocmemAdapter):
    """locmem configured to tell whether a reply arrived, as the pipeline's tests of that path use it."""

    @pytest.fixture
    def raw_config(self):
        return {"inbox": "c", "webhook_secret": "s", "finds_sent": True}


class TestSlackAdapter(AdapterContract, InboundFilesContract, OutboundFilesContract, WebhookContract):
    @pytest.fixture
    def raw_config(self, slack_emulator):
        return {
            "bot_token": "xoxb-emulator",
            "signing_secret": "emulator-secret",
            "conversations": ["C0GENERAL"],
            "base_url": slack_emulator.base_url,
        }

    @pytest.fixture
    def adapter(self, raw_config, db):
        config, secrets = SlackAdapter.split_config(raw_config)
        adapter = SlackAdapter(config=config, secrets=secrets)
        adapter.state = adapter.check_credentials()
        return adapter

    @pytest.fixture
    def add_inbound(self, slack_emulator):
        def add(texts):
            slack_emulator.post_many("C0GENERAL", [{"user": "U0ANN", "text": text} for text in texts])

        return add

    @pytest.fixture
    def add_inbound_file(self, slack_emulator):
        def add(text, name, content, content_type):
            files = [{"name": name, "content": content, "mimetype": content_type}]
            slack_emulator.post("C0GENERAL", "U0ANN", text, files=files)
            return name, len(content)

        return add

    def test_files_are_fetched_only_from_slack_hosts(self, adapter):
        with pytest.raises(PermanentError, match="token is not sent"):
            b"".join(adapter.fetch_attachment("https://attacker.example/files-pri/T-F1/a.txt"))

    def test_config_without_token_is_refused(self):
        with pytest.raises(ConfigError, match="bot_token"):
            SlackAdapter.split_config({"conversations": []})


class TestXAdapter(AdapterContract, InboundFilesContract):
    """X: no webhooks for one account on pay-per-use, and replies carry text only; inbound media are files."""

    inbound_file = ("screen.png", "image/png")

    @pytest.fixture
    def raw_config(self, x_emulator):
        return {"bearer_token": "x-emulator-bearer", "base_url": x_emulator.url}

    @pytest.fixture
    def adapter(self, raw_config):
        config, secrets = XAdapter.split_config(raw_config)
        adapter = XAdapter(config=config, secrets=secrets)
        adapter.state = adapter.check_credentials()
        return adapter

    @pytest.fixture
    def add_inbound(self, x_emulator):
        def add(texts):
            for text in texts:
                x_emulator.dm_from(x_emulator.people["maya"], text)

        return add

    @pytest.fixture
    def add_inbound_file(self, x_emulator):
        def add(text, name, content, content_type):
            photo = {"type": "photo", "content": content, "content_type": content_type}
            [key] = x_emulator.post(x_emulator.people["maya"], f"@ithelp {text}", media=[photo])["media_keys"]
            return f"photo-{key}{PurePosixPath(name).suffix}", 0  # X names no file and declares no size

        return add

    def test_replies_carry_no_files(self, adapter, add_inbound):
        add_inbound(["help"])
        envelope = self.inbound(adapter)[0]
        target = ReplyTarget(thread_key=envelope.thread_key, mode="dm")
        assert not any(mode.attachments for mode in adapter.reply_modes(target))
        with pytest.raises(PermanentError, match="text only"):
            adapter.send_attachment(target=target, file=OutboundFile("log.txt", "text/plain", b"line\n"))


class TestWhatsAppAdapter(
    AdapterContract, PushOnlyContract, InboundFilesContract, OutboundFilesContract, WebhookContract
):
    """WhatsApp: no API to read messages, so what people write arrives only as the emulator's signed pushes,
    received here by a webhook endpoint of the test's own (``PushInbox``); replies carry files."""

    NUMBER_ID, WABA_ID = "106540352242922", "102290129340398"

    @pytest.fixture
    def raw_config(self, meta_emulator):
        return {
            "phone_number_id": self.NUMBER_ID,
            "waba_id": self.WABA_ID,
            "access_token": "EAAG-contract",
            "app_secret": "contract-app-secret",
            "verify_token": "contract-verify",
            "base_url": meta_emulator.base_url,
        }

    @pytest.fixture
    def adapter(self, raw_config, meta_emulator):
        config, secrets = WhatsAppAdapter.split_config(raw_config)
        adapter = WhatsAppAdapter(config=config, secrets=secrets)
        self.pushes = PushInbox(adapter)
        account = meta_emulator.add_whatsapp(
            phone_number_id=self.NUMBER_ID,
            waba_id=self.WABA_ID,
            token=secrets["access_token"],
            app_secret=secrets["app_secret"],
            verify_token=secrets["verify_token"],
            webhook_url=self.pushes.url,
        )
        assert account["handshake"]["passed"], account["handshake"]
        self.emulator = meta_emulator
        adapter.state = adapter.check_credentials()
        yield adapter
        self.pushes.stop()

    def inbound(self, adapter):
        return self.pushes.take(self.emulator)

    @pytest.fixture
    def add_inbound(self, meta_emulator):
        def add(texts):
            for text in texts:
                meta_emulator.whatsapp(self.NUMBER_ID, text, wa_id="4915112345678", name="Ana")

        return add

    @pytest.fixture
    def add_inbound_file(self, meta_emulator):
        def add(text, name, content, content_type):
            meta_emulator.whatsapp(
                self.NUMBER_ID,
                wa_id="4915112345678",
                type="document",
                content=content,
                mime_type=content_type,
                filename=name,
                caption=text,
            )
            return name, 0  # WhatsApp's webhooks declare no size

        return add


class TestFacebookAdapter(AdapterContract, InboundFilesContract, OutboundFilesContract, WebhookContract):
    """A Facebook Page on the Meta emulator: Messenger DMs (polled from the Conversations API), with files both
    ways, webhooks signed with the app secret."""

    @pytest.fixture
    def page(self, meta_emulator):
        return meta_emulator.add_page("1001", name="IT Help")

    @pytest.fixture
    def raw_config(self, meta_emulator, page):
        return {
            "page_id": page["id"],
            "page_access_token": page["token"],
            "app_secret": page["app_secret"],
            "verify_token": page["verify_token"],
            "human_agent": True,
            "base_url": meta_emulator.base_url,
        }

    @pytest.fixture
    def adapter(self, raw_config):
        config, secrets = FacebookAdapter.split_config(raw_config)
        adapter = FacebookAdapter(config=config, secrets=secrets)
        adapter.state = adapter.check_credentials()
        return adapter

    @pytest.fixture
    def add_inbound(self, meta_emulator, page):
        def add(texts):
            for text in texts:
                meta_emulator.dm(page["id"], text, name="Ann Employee")

        return add

    @pytest.fixture
    def add_inbound_file(self, meta_emulator, page):
        def add(text, name, content, content_type):
            attachment = {"content": content, "mime_type": content_type, "filename": name}
            meta_emulator.dm(page["id"], text, name="Ann Employee", attachments=[attachment])
            return name, len(content)

        return add


class TestInstagramAdapter(AdapterContract, InboundFilesContract, WebhookContract):
    """An Instagram account (linked to a Page) on the Meta emulator. Its DMs carry images, video and audio
    only, so the outbound file contract's text file does not apply: an image goes out instead."""

    inbound_file = ("screen.png", "image/png")

    @pytest.fixture
    def account(self, meta_emulator):
        page = meta_emulator.add_page("1001", name="IT Help")
        return {**meta_emulator.add_instagram(page["id"], "17841400000000001", username="ithelp"), "page": page}

    @pytest.fixture
    def raw_config(self, meta_emulator, account):
        return {
            "ig_user_id": account["id"],
            "page_id": account["page"]["id"],
            "page_access_token": account["page"]["token"],
            "app_secret": account["page"]["app_secret"],
            "verify_token": account["verify_token"],
            "base_url": meta_emulator.base_url,
        }

    @pytest.fixture
    def adapter(self, raw_config):
        config, secrets = InstagramAdapter.split_config(raw_config)
        adapter = InstagramAdapter(config=config, secrets=secrets)
        adapter.state = adapter.check_credentials()
        return adapter

    @pytest.fixture
    def add_inbound(self, meta_emulator, account):
        def add(texts):
            for text in texts:
                meta_emulator.dm(account["id"], text, username="maya.dev")

        return add

    @pytest.fixture
    def add_inbound_file(self, meta_emulator, account):
        def add(text, name, content, content_type):
            attachment = {"content": content, "mime_type": content_type, "filename": name}
            meta_emulator.dm(account["id"], text, username="maya.dev", attachments=[attachment])
            return name, len(content)

        return add

    def test_replies_carry_images_but_not_documents(self, adapter, add_inbound, meta_emulator):
        target = self.reply_target(adapter, add_inbound)
        [mode] = [m for m in adapter.reply_modes(target) if m.allowed and m.attachments]
        assert mode.attachments.max_bytes == 25 * 1024 * 1024
        file_id = adapter.send_attachment(target=target, file=OutboundFile("screen.png", "image/png", b"\x89PNG..."))
        assert file_id
        assert [item["attachments"] for item in meta_emulator.sent()][-1][0]["type"] == "image"
        with pytest.raises(PermanentError, match="images, video and audio only"):
            adapter.send_attachment(target=target, file=OutboundFile("log.txt", "text/plain", b"line\n"))


class TestEmailAdapter(AdapterContract, InboundFilesContract, OutboundFilesContract):
    """A mailbox on a real Dovecot, replies to a real SMTP server (the catcher) through Django's email backend.
    A reply's files travel in its one mail (``files_with_text``), never by ``send_attachment``."""

    @pytest.fixture
    def raw_config(self, dovecot, smtp_catcher):
        return email_config(dovecot, smtp_catcher)

    @pytest.fixture
    def adapter(self, raw_config, db):
        config, secrets = EmailAdapter.split_config(raw_config)
        adapter = EmailAdapter(config=config, secrets=secrets)
        give_transport(adapter)
        adapter.state = adapter.check_credentials()
        return adapter

    @pytest.fixture
    def add_inbound(self, dovecot):
        def add(texts):
            for text in texts:
                dovecot.deliver(DESK, mail(text))

        return add

    @pytest.fixture
    def add_inbound_file(self, dovecot):
        def add(text, name, content, content_type):
            dovecot.deliver(DESK, mail(text, files=[(name, content, content_type)]))
            return name, len(content)

        return add

    def test_a_reply_carries_its_files_in_its_one_mail(self, adapter, add_inbound, smtp_catcher):
        target = self.reply_target(adapter, add_inbound)
        log, image = (
            OutboundFile("démarrage.log", "text/plain", b"line 1\nline 2\r\n"),
            OutboundFile("s.png", "image/png", b"\x89PNG"),
        )
        sent = adapter.send(target=target, text="both files attached", key="reply-1", files=(log, image))

        [caught] = smtp_catcher.messages
        assert caught["Message-ID"] == f"<{sent.external_id}>"
        assert caught.message.get_body(("plain",)).get_content().strip() == "both files attached"
        files = [
            (part.get_filename(), part.get_content_type(), part.get_payload(decode=True))
            for part in caught.message.iter_attachments()
        ]
        assert files == [("démarrage.log", "text/plain", b"line 1\nline 2\r\n"), ("s.png", "image/png", b"\x89PNG")]
        with pytest.raises(PermanentError, match="text only"):
            adapter.send_attachment(target=target, file=log)


class _FilesSentMail:
    """What Gmail and Microsoft 365 do with mail their SMTP relays: a copy lands in the Sent folder."""

    def __init__(self, transport, dovecot, smtp_catcher):
        self.transport, self.dovecot, self.smtp_catcher = transport, dovecot, smtp_catcher

    def send(self, mail):
        self.transport.send(mail)
        self.dovecot.deliver(DESK, self.smtp_catcher.messages[-1].raw, mailbox="Sent")

    def check(self):
        self.transport.check()


class TestEmailAdapterThatLooks(TestEmailAdapter):
    """With a Sent folder configured, a reply whose outcome was unknown is looked for there by its Message-ID."""

    @pytest.fixture
    def raw_config(self, dovecot, smtp_catcher):
        return email_config(dovecot, smtp_catcher, sent_folder="Sent")

    @pytest.fixture
    def adapter(self, raw_config, db, dovecot, smtp_catcher):
        config, secrets = EmailAdapter.split_config(raw_config)
        adapter = EmailAdapter(config=config, secrets=secrets)
        give_transport(adapter)
        adapter.mail_transport = _FilesSentMail(adapter.mail_transport, dovecot, smtp_catcher)
        dovecot.create_mailbox(DESK, "Sent")
        adapter.state = adapter.check_credentials()
        return adapter
