"""Content actions through a running gateway: "compress attachments" over real SMTP."""

from __future__ import annotations

import email
import io
import zipfile
from email.policy import default
from pathlib import Path

from filters.compress import HEADER, ZIP_NAME
from tests.service.conftest import Start
from tests.service.gatewayfixtures import POLICY, message, send
from tests.smtpsink import RecordingSink

COMPRESS = (
    POLICY
    + """
[[domains."example.test".content_rules]]
name = "zip-documents"
attachment_types = [".doc", ".pdf"]
action = "compress"
"""
)


async def test_compressed_attachments_arrive_as_one_valid_zip(
    tmp_path: Path, start_gateway: Start, sink: RecordingSink
) -> None:
    (tmp_path / "policy.toml").write_text(COMPRESS)
    gateway = await start_gateway()
    msg = message(body="Minutes and the report attached.")
    msg.add_attachment(b"DOC" * 5000, maintype="application", subtype="msword",
                       filename="minutes.doc")  # fmt: skip
    msg.add_attachment(b"%PDF-1.4 " * 900, maintype="application", subtype="pdf",
                       filename="report.pdf")  # fmt: skip
    msg.add_attachment(b"\x89PNG" + bytes(64), maintype="image", subtype="png",
                       filename="logo.png")  # fmt: skip
    await send(gateway.smtp_port, msg)
    (got,) = await sink.wait_for(1, timeout=15)
    delivered = email.message_from_bytes(got.data, policy=default)
    assert not any(part.defects for part in delivered.walk())
    assert delivered["X-Mailmoat-Action"] == "deliver"
    assert delivered[HEADER] == f"2 attachment(s) into {ZIP_NAME}: minutes.doc, report.pdf"
    names = [p.get_filename() for p in delivered.walk() if p.get_filename()]
    assert names == [ZIP_NAME, "logo.png"]
    (zipped,) = [p for p in delivered.walk() if p.get_filename() == ZIP_NAME]
    payload = zipped.get_payload(decode=True)
    assert isinstance(payload, bytes)
    with zipfile.ZipFile(io.BytesIO(payload)) as archive:
        assert archive.read("minutes.doc") == b"DOC" * 5000
        assert archive.read("report.pdf") == b"%PDF-1.4 " * 900
    text = delivered.get_body(preferencelist=("plain",))
    assert text is not None and "Minutes and the report" in text.get_content()
