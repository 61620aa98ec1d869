"""The citizen pages' words, Vietnamese (default) and English.

    >>> translate("en", "lookup.title")
    'Get your vaccine passport'
    >>> language_of({"lang": "en"}, None, "vi"), language_of({}, "xx", "vi")
    ('en', 'vi')

Pages call ``t(key)``; a key missing in a language falls back to Vietnamese,
and a key missing in both is an error at start-up (:func:`check`), not a blank.
"""

from __future__ import annotations

from collections.abc import Mapping

LANGUAGES = ("vi", "en")
LANG_COOKIE = "lang"

MESSAGES: dict[str, dict[str, str]] = {
    "site.title": {"vi": "Hộ chiếu vắc-xin", "en": "Vaccine passport"},
    "site.other_language": {"vi": "English", "en": "Tiếng Việt"},
    "lookup.title": {"vi": "Nhận hộ chiếu vắc-xin của bạn", "en": "Get your vaccine passport"},
    "lookup.intro": {
        "vi": "Nhập số giấy tờ tùy thân và ngày sinh như đã khai khi tiêm. Chúng tôi sẽ gửi mã một lần "
              "đến số điện thoại đã đăng ký.",
        "en": "Enter your ID number and date of birth as given at vaccination. We send a one-time code "
              "to the phone number on your record.",
    },
    "lookup.id": {"vi": "Số CCCD, CMND hoặc hộ chiếu", "en": "Citizen ID (CCCD), old ID (CMND) or passport number"},
    "lookup.dob": {"vi": "Ngày sinh (dd/mm/yyyy, hoặc chỉ năm sinh)",
                   "en": "Date of birth (dd/mm/yyyy, or the year only)"},
    "lookup.submit": {"vi": "Gửi mã", "en": "Send me a code"},
    "lookup.claim_link": {"vi": "Số điện thoại sai hoặc chưa có? Dùng mã nhận hộ chiếu",
                          "en": "Wrong or no phone number? Use a claim code"},
    "code.title": {"vi": "Nhập mã một lần", "en": "Enter the one-time code"},
    "code.sent": {
        "vi": "Nếu thông tin khớp với một hồ sơ có số điện thoại, chúng tôi đã gửi mã 6 chữ số đến số đó. "
              "Mã có hiệu lực 5 phút.",
        "en": "If the details match a record with a phone number, we sent a 6-digit code to it. "
              "The code is valid for 5 minutes.",
    },
    "code.no_phone": {
        "vi": "Không nhận được mã? Hồ sơ có thể không có số điện thoại hoặc số sai: hãy dùng mã nhận hộ chiếu "
              "do trạm y tế cấp.",
        "en": "No code? Your record may have no phone number or a wrong one: use the claim code your health "
              "centre gives you.",
    },
    "code.label": {"vi": "Mã 6 chữ số", "en": "6-digit code"},
    "code.submit": {"vi": "Xác nhận", "en": "Confirm"},
    "code.resend": {"vi": "Gửi lại mã", "en": "Send a new code"},
    "code.wrong": {"vi": "Mã không đúng hoặc đã hết hạn.", "en": "The code is wrong or has expired."},
    "code.dead": {"vi": "Mã này không còn dùng được. Vui lòng tra cứu lại để nhận mã mới.",
                  "en": "This code can no longer be used. Please look up again to get a new code."},
    "code.wait": {"vi": "Vui lòng chờ {seconds} giây trước khi gửi lại mã.",
                  "en": "Please wait {seconds} seconds before asking for a new code."},
    "code.resent": {"vi": "Nếu thông tin khớp, một mã mới đã được gửi.",
                    "en": "If the details matched, a new code was sent."},
    "passport.title": {"vi": "Hộ chiếu vắc-xin của bạn", "en": "Your vaccine passports"},
    "passport.none": {"vi": "Chưa có chứng nhận nào.", "en": "No certificate yet."},
    "passport.pdf": {"vi": "Tải PDF", "en": "Download PDF"},
    "passport.qr_alt": {"vi": "Mã QR hộ chiếu vắc-xin", "en": "Vaccine passport QR code"},
    "passport.centre": {"vi": "Nơi cấp", "en": "Issued by"},
    "passport.issued": {"vi": "Ngày cấp", "en": "Issued"},
    "passport.expires": {"vi": "Hết hạn", "en": "Expires"},
    "passport.reissued": {"vi": "Đã cấp lại ngày", "en": "Re-issued on"},
    "passport.reason": {"vi": "Lý do", "en": "Reason"},
    "status.valid": {"vi": "Còn hiệu lực", "en": "Valid"},
    "status.expiring": {"vi": "Sắp hết hạn (dưới 30 ngày)", "en": "Expiring soon (under 30 days)"},
    "status.expired": {"vi": "Đã hết hạn", "en": "Expired"},
    "status.superseded": {"vi": "Đã được thay thế", "en": "Superseded"},
    "status.revoked": {"vi": "Đã bị thu hồi", "en": "Revoked"},
    "nav.passport": {"vi": "Hộ chiếu", "en": "Passports"},
    "nav.access": {"vi": "Lịch sử truy cập", "en": "Access log"},
    "nav.signout": {"vi": "Đăng xuất", "en": "Sign out"},
    "access.title": {"vi": "Ai đã tải hộ chiếu của bạn", "en": "When and from where your passport was fetched"},
    "access.when": {"vi": "Thời gian (UTC)", "en": "Time (UTC)"},
    "access.what": {"vi": "Thao tác", "en": "Action"},
    "access.where": {"vi": "Mạng", "en": "Network"},
    "access.agent": {"vi": "Trình duyệt", "en": "Browser"},
    "action.sign_in": {"vi": "Đăng nhập", "en": "Signed in"},
    "action.pdf": {"vi": "Tải PDF", "en": "PDF downloaded"},
    "action.qr": {"vi": "Xem mã QR", "en": "QR shown"},
    "action.phone_set": {"vi": "Đặt số điện thoại", "en": "Phone number set"},
    "claim.title": {"vi": "Dùng mã nhận hộ chiếu", "en": "Use a claim code"},
    "claim.intro": {
        "vi": "Mã nhận hộ chiếu được in trên phiếu do trạm y tế cấp. Nhập mã cùng số giấy tờ, ngày sinh và "
              "số điện thoại mới; chúng tôi sẽ gửi mã một lần đến số đó.",
        "en": "The claim code is printed on the slip from your health centre. Enter it with your ID number, "
              "date of birth and a new phone number; we send a one-time code to that number.",
    },
    "claim.code": {"vi": "Mã nhận (XXXXX-XXXXX-XXXXX-XXXXX)", "en": "Claim code (XXXXX-XXXXX-XXXXX-XXXXX)"},
    "claim.phone": {"vi": "Số điện thoại mới", "en": "New phone number"},
    "claim.submit": {"vi": "Đặt số và gửi mã", "en": "Set the number and send a code"},
    "claim.wrong": {"vi": "Mã nhận, số giấy tờ và ngày sinh không khớp, hoặc mã đã dùng hay hết hạn.",
                    "en": "The claim code does not match this ID number and date of birth, or it was "
                          "used or has expired."},
    "error.title": {"vi": "Không thực hiện được", "en": "That did not work"},
    "error.back": {"vi": "Về trang đầu", "en": "Back to the start"},
    "error.csrf": {"vi": "Biểu mẫu đã hết hạn hoặc không hợp lệ. Vui lòng tải lại trang và thử lại.",
                   "en": "The form has expired or is not valid. Please reload the page and try again."},
    "error.not_found": {"vi": "Không tìm thấy trang hoặc tệp này.", "en": "This page or file was not found."},
    "error.file_damaged": {"vi": "Tệp này không khớp với bản đã cấp; vui lòng liên hệ trạm y tế.",
                           "en": "This file does not match the one issued; please contact your health centre."},
    "error.signin": {"vi": "Vui lòng tra cứu và nhập mã để xem hộ chiếu.",
                     "en": "Please look up and enter your code to see your passports."},
    "error.bad_id": {"vi": "Số giấy tờ phải gồm 6 đến 20 chữ cái hoặc chữ số.",
                     "en": "The ID number must be 6 to 20 letters or digits."},
    "error.bad_dob": {"vi": "Ngày sinh phải có dạng dd/mm/yyyy, mm/yyyy hoặc yyyy.",
                      "en": "The date of birth must look like dd/mm/yyyy, mm/yyyy or yyyy."},
    "error.bad_code": {"vi": "Mã gồm đúng 6 chữ số.", "en": "The code is exactly 6 digits."},
    "error.bad_phone": {"vi": "Số điện thoại không hợp lệ (ví dụ 0912 345 678 hoặc +84912345678).",
                        "en": "The phone number is not valid (e.g. 0912 345 678 or +84912345678)."},
    "error.bad_form": {"vi": "Biểu mẫu không hợp lệ.", "en": "The form is not valid."},
    "error.too_big": {"vi": "Dữ liệu gửi lên quá lớn.", "en": "The form data is too large."},
    "error.rate": {"vi": "Quá nhiều yêu cầu từ mạng của bạn. Vui lòng thử lại sau ít phút.",
                   "en": "Too many requests from your network. Please try again in a few minutes."},
    "error.locked": {
        "vi": "Quá nhiều lần nhập mã sai hoặc yêu cầu mã cho thông tin này. Vui lòng thử lại sau {minutes} phút, "
              "hoặc dùng mã nhận hộ chiếu để mở khóa ngay.",
        "en": "Too many wrong codes or code requests for these details. Please try again in {minutes} minutes, "
              "or use your claim code to unlock now.",
    },
    "signout.done": {"vi": "Bạn đã đăng xuất.", "en": "You are signed out."},
    "sms.text": {"vi": "Ma xac thuc ho chieu vac-xin: {code} (hieu luc 5 phut). Khong chia se ma nay.",
                 "en": "Vaccine passport code: {code} (valid 5 minutes). Do not share it."},
}


def translate(lang: str, key: str, **values: object) -> str:
    entry = MESSAGES[key]
    text = entry.get(lang) or entry["vi"]
    return text.format(**values) if values else text


def language_of(cookies: Mapping[str, str], query: str | None, default: str) -> str:
    """``?lang=`` first (the link), then the ``lang`` cookie, then the default."""
    for value in (query, cookies.get(LANG_COOKIE)):
        if value in LANGUAGES:
            return str(value)
    return default if default in LANGUAGES else "vi"


def check() -> None:
    for key, entry in MESSAGES.items():
        missing = [lang for lang in LANGUAGES if not entry.get(lang)]
        if missing:
            raise AssertionError(f"i18n: {key} has no {', '.join(missing)} text")
