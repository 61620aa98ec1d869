"""Short human verdict for checkpoint staff, in English or Vietnamese.

    >>> from verifier.human import render
    >>> from verifier.result import Verdict, Stage, Reason
    >>> print(render(Verdict.failed(Stage.PREFIX, Reason.PREFIX_MISSING, "x"), lang="en"))
    INVALID
    Reason: not an EU DCC QR code (no HC1: prefix)

Shows the name, date of birth, the doses (vaccination) or the test or
recovery entry, and "valid" or why not. Reason texts come from the reason
codes, so they are the same whatever the message said.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from verifier.result import Reason, Verdict
from verifier.valuesets import display

LANGS = ("en", "vi")

_LABELS: Mapping[str, Mapping[str, str]] = {
    "en": {
        "valid": "VALID",
        "invalid": "INVALID",
        "name": "Name",
        "dob": "Date of birth",
        "vaccination": "Vaccination",
        "dose": "dose {dn} of {sd}",
        "test": "Test",
        "recovery": "Recovery",
        "positive_on": "first positive test {fr}, valid {df} to {du}",
        "sampled": "sample taken {sc}",
        "certificate": "Certificate",
        "issuer": "Issued by",
        "expires": "QR valid until",
        "reason": "Reason",
        "reasons": "Reasons",
    },
    "vi": {
        "valid": "HỢP LỆ",
        "invalid": "KHÔNG HỢP LỆ",
        "name": "Họ và tên",
        "dob": "Ngày sinh",
        "vaccination": "Tiêm chủng",
        "dose": "mũi {dn}/{sd}",
        "test": "Xét nghiệm",
        "recovery": "Khỏi bệnh",
        "positive_on": "dương tính lần đầu {fr}, hiệu lực {df} đến {du}",
        "sampled": "lấy mẫu {sc}",
        "certificate": "Mã chứng nhận",
        "issuer": "Nơi cấp",
        "expires": "Mã QR có hiệu lực đến",
        "reason": "Lý do",
        "reasons": "Lý do",
    },
}

_REASONS: Mapping[Reason, tuple[str, str]] = {
    Reason.IMAGE_UNREADABLE: ("the image cannot be read", "không đọc được ảnh"),
    Reason.NO_QR_CODE: ("no QR code found in the image", "không tìm thấy mã QR trong ảnh"),
    Reason.TOO_LONG: ("QR content is too long", "nội dung mã QR quá dài"),
    Reason.PREFIX_MISSING: (
        "not an EU DCC QR code (no HC1: prefix)",
        "không phải mã QR chứng nhận EU DCC (thiếu tiền tố HC1:)",
    ),
    Reason.BASE45_INVALID: ("QR content is corrupted (base45)", "nội dung mã QR bị hỏng (base45)"),
    Reason.ZLIB_INVALID: ("QR content is corrupted (zlib)", "nội dung mã QR bị hỏng (zlib)"),
    Reason.ZLIB_TOO_LARGE: ("QR content is too large", "nội dung mã QR quá lớn"),
    Reason.COSE_MALFORMED: (
        "QR content is not a signed certificate",
        "mã QR không chứa chứng nhận có chữ ký",
    ),
    Reason.COSE_WRONG_TAG: (
        "QR content is not a signed certificate",
        "mã QR không chứa chứng nhận có chữ ký",
    ),
    Reason.CRIT_UNSUPPORTED: (
        "the QR requires a signature feature this verifier does not support",
        "mã QR yêu cầu tính năng chữ ký mà thiết bị kiểm tra không hỗ trợ",
    ),
    Reason.CRIT_MALFORMED: (
        "QR content is not a valid signed certificate",
        "mã QR không chứa chứng nhận có chữ ký hợp lệ",
    ),
    Reason.DUPLICATE_MAP_KEY: (
        "QR content is malformed (a field appears twice)",
        "nội dung mã QR sai cấu trúc (một trường xuất hiện hai lần)",
    ),
    Reason.TRAILING_BYTES: (
        "QR content is malformed (extra data)",
        "nội dung mã QR sai cấu trúc (có dữ liệu thừa)",
    ),
    Reason.INTEGER_OUT_OF_RANGE: (
        "QR content is malformed (number out of range)",
        "nội dung mã QR sai cấu trúc (số vượt giới hạn)",
    ),
    Reason.CWT_MALFORMED: ("certificate content is malformed", "nội dung chứng nhận sai cấu trúc"),
    Reason.CWT_NO_HCERT: ("no health certificate in the QR", "mã QR không chứa chứng nhận y tế"),
    Reason.UNSUPPORTED_ALG: (
        "unsupported signature algorithm",
        "thuật toán chữ ký không được hỗ trợ",
    ),
    Reason.KID_MISSING: ("signer key not identified", "không xác định được khóa ký"),
    Reason.UNKNOWN_KID: (
        "signer is not in the trust list",
        "đơn vị ký không có trong danh sách tin cậy",
    ),
    Reason.BAD_SIGNATURE: (
        "signature is not valid (forged or altered)",
        "chữ ký không hợp lệ (giả mạo hoặc bị sửa đổi)",
    ),
    Reason.DSC_UNTRUSTED: (
        "signer certificate is not issued by a trusted authority",
        "chứng thư ký không do cơ quan tin cậy cấp",
    ),
    Reason.DSC_EXPIRED: (
        "signer certificate is outside its validity period",
        "chứng thư ký đã hết hạn hoặc chưa có hiệu lực",
    ),
    Reason.DSC_REVOKED: ("signer certificate is revoked", "chứng thư ký đã bị thu hồi"),
    Reason.DSC_KEY_UNSUPPORTED: (
        "signer certificate has a key type that cannot sign an EU DCC",
        "khóa của chứng thư ký không thuộc loại được phép ký EU DCC",
    ),
    Reason.DSC_MALFORMED: (
        "the trusted signer certificate cannot be read",
        "không đọc được chứng thư ký trong danh sách tin cậy",
    ),
    Reason.PSS_SALT_LENGTH: (
        "signature is not valid (RSA-PSS salt length is not 32 bytes)",
        "chữ ký không hợp lệ (độ dài salt RSA-PSS không phải 32 byte)",
    ),
    Reason.UVCI_REVOKED: ("this certificate has been revoked", "chứng nhận này đã bị thu hồi"),
    Reason.EXPIRED: ("the certificate has expired", "chứng nhận đã hết hạn"),
    Reason.NOT_YET_VALID: ("the certificate is not yet valid", "chứng nhận chưa có hiệu lực"),
    Reason.EXP_MISSING: ("the certificate has no expiry date", "chứng nhận không có ngày hết hạn"),
    Reason.IAT_MISSING: ("the certificate has no issue date", "chứng nhận không có ngày cấp"),
    Reason.TIME_INVALID: (
        "the certificate's dates are not valid",
        "ngày tháng của chứng nhận không hợp lệ",
    ),
    Reason.WRONG_CERTIFICATE_TYPE: (
        "signer may not issue this type of certificate",
        "đơn vị ký không được cấp loại chứng nhận này",
    ),
    Reason.DSC_WRONG_USAGE: (
        "signed with a key that may not sign certificates (trust-list key)",
        "được ký bằng khóa không được phép ký chứng nhận (khóa danh sách tin cậy)",
    ),
    Reason.NO_CERTIFICATE_TYPE: (
        "no vaccination, test or recovery entry",
        "không có thông tin tiêm chủng, xét nghiệm hoặc khỏi bệnh",
    ),
    Reason.SCHEMA_INVALID: (
        "certificate content does not follow the EU DCC format",
        "nội dung chứng nhận không đúng định dạng EU DCC",
    ),
    Reason.RULE_FAILED: (
        "the certificate does not meet the entry rules (policy profile)",
        "chứng nhận không đáp ứng quy định nhập cảnh (hồ sơ chính sách)",
    ),
    Reason.RULE_OPEN: (
        "an entry rule could not be checked",
        "không thể kiểm tra một quy định nhập cảnh",
    ),
    Reason.NO_RULES: (
        "no entry rule applies to this certificate: refused",
        "không có quy định nhập cảnh nào áp dụng cho chứng nhận này: từ chối",
    ),
    Reason.INTERNAL: ("internal error while verifying", "lỗi nội bộ khi kiểm tra"),
}


def reason_text(reason: Reason, lang: str = "en") -> str:
    """The reason in the staff's language."""
    en, vi = _REASONS.get(reason, (str(reason), str(reason)))
    return vi if lang == "vi" else en


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _scalar(value: Any) -> str:
    """A text or a small number as text; "?" for anything else (untrusted payload)."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool) and abs(value) < 10**15:
        return str(value)
    return "?"


def _name(dcc: Mapping[str, Any]) -> str:
    nam = dcc.get("nam")
    if not isinstance(nam, Mapping):
        return "?"
    written = " ".join(p for p in (_text(nam.get("fn")), _text(nam.get("gn"))) if p)
    std = " ".join(p for p in (_text(nam.get("fnt")), _text(nam.get("gnt"))) if p)
    std = std.replace("<", " ")
    if written and std and std != written.upper():
        return f"{written} ({std})"
    return written or std or "?"


def _entry_lines(dcc: Mapping[str, Any], labels: Mapping[str, str]) -> list[str]:
    lines: list[str] = []
    for entry in _entries(dcc, "v"):
        dose = labels["dose"].format(dn=_scalar(entry.get("dn")), sd=_scalar(entry.get("sd")))
        product = display("vaccine-medicinal-product", _scalar(entry.get("mp")))
        parts = [dose, product, _text(entry.get("dt")), _text(entry.get("co"))]
        lines.append(f"{labels['vaccination']}: " + ", ".join(p for p in parts if p))
    for entry in _entries(dcc, "t"):
        result = display("test-result", _scalar(entry.get("tr")))
        kind = display("test-type", _scalar(entry.get("tt")))
        sampled = labels["sampled"].format(sc=_text(entry.get("sc")) or "?")
        lines.append(f"{labels['test']}: {kind}, {result}, {sampled}")
    for entry in _entries(dcc, "r"):
        text = labels["positive_on"].format(
            fr=_text(entry.get("fr")) or "?",
            df=_text(entry.get("df")) or "?",
            du=_text(entry.get("du")) or "?",
        )
        lines.append(f"{labels['recovery']}: {text}")
    return lines


def _entries(dcc: Mapping[str, Any], group: str) -> list[Mapping[str, Any]]:
    value = dcc.get(group)
    if not isinstance(value, list | tuple):
        return []
    return [e for e in value if isinstance(e, Mapping)]


def _when(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "?"
    try:
        return dt.datetime.fromtimestamp(value, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    except (OverflowError, OSError, ValueError):
        return "?"


def render(verdict: Verdict, *, lang: str = "en") -> str:
    """Multi-line verdict text; ``lang`` is ``en`` or ``vi``."""
    labels = _LABELS.get(lang, _LABELS["en"])
    lines = [labels["valid"] if verdict.valid else labels["invalid"]]
    payload = verdict.payload
    dcc = payload.get("hcert") if payload is not None else None
    if isinstance(dcc, Mapping):
        lines.append(f"{labels['name']}: {_name(dcc)}")
        lines.append(f"{labels['dob']}: {_text(dcc.get('dob')) or '?'}")
        lines.extend(_entry_lines(dcc, labels))
        entries = [e for g in ("v", "t", "r") for e in _entries(dcc, g)]
        if entries:
            if _text(entries[0].get("ci")):
                lines.append(f"{labels['certificate']}: {_text(entries[0].get('ci'))}")
            if _text(entries[0].get("is")):
                lines.append(f"{labels['issuer']}: {_text(entries[0].get('is'))}")
        if payload is not None:
            lines.append(f"{labels['expires']}: {_when(payload.get('exp'))}")
    if not verdict.valid:
        texts = list(dict.fromkeys(reason_text(e.reason, lang) for e in verdict.errors))
        if not texts and verdict.stage_failed:
            texts = [verdict.stage_failed]
        if len(texts) == 1:
            lines.append(f"{labels['reason']}: {texts[0]}")
        else:
            lines.append(f"{labels['reasons']}:")
            lines.extend(f"  - {t}" for t in texts)
    return "\n".join(lines)
