// Texts of the page in Vietnamese (default) and English. Verdict labels and reason texts
// are those of verifier/human.py (generated from it; keep them in step).

export const LABELS = {
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
  "title": "Certificate checkpoint",
  "start_camera": "Start camera",
  "stop_camera": "Stop camera",
  "torch": "Torch",
  "photo": "Photo of a QR code",
  "wedge": "Scanner input / paste HC1 text",
  "drop": "Drop a QR image or a PDF here",
  "import_trust": "Import trust list / certificates",
  "export_log": "Export scan log",
  "dismiss": "Tap or press a key to scan again",
  "trust_loading": "Loading trust material…",
  "trust_none": "No trust material: import a trust list",
  "trust_ok": "{dscs} signer certificates; {lists}",
  "trust_list": "trust list {country} #{seq}, issued {age} days ago",
  "trust_files": "certificate files only",
  "trust_warn": "Trust list is {age} days old: update it soon",
  "trust_refused": "Trust list is {age} days old (more than {max}): refused, import a newer one",
  "trust_error": "Trust material unusable: {message}",
  "clock_wrong": "The device clock ({now}) is before the trust list's issue time ({iat}): check the clock",
  "offline": "Offline: verifying with the stored trust list",
  "scanning": "Scanning…",
  "camera_error": "Camera unavailable: {message}",
  "no_qr": "No QR code found",
  "pdf_unsupported": "{name}: a PDF passport is NOT checked by this page. The browser cannot check the PDF's own signature (PAdES), its timestamp, its revocation data, nor whether the printed name and doses agree with the QR. Check the file with `python -m verifier pdf`, or scan the QR printed on it with the camera (that checks the QR only).",
  "log_count": "{n} scans logged",
  "lang_other": "Tiếng Việt",
  "profile": "Entry rules (profile)",
  "warn_days": "Warn when the trust list or rule set is older than (days)",
  "refuse_days": "Refuse when older than (days)",
  "no_profile": "no business rules",
  "rules_none": "No rule set: cryptographic checks only",
  "rules_ok": "{n} rules of {country}; profile {profile}",
  "rules_error": "Rule set unusable: {message}",
  "rules_refused": "Rule set refused: {message}",
  "rules_signed": "Signed rule set {country} #{seq}, issued {age} days ago",
  "rules_unsigned": "Unsigned rule set from this server",
  "rules_warn": "Rule set is {age} days old: update it soon",
  "rules_too_old": "Rule set is {age} days old (more than {max}): refused, import a newer one",
  "rules_clock": "The device clock is before the rule set's issue time: check the clock",
  "rules_need_trust": "a signed rule set needs the trust list's CSCA first",
  "import_rules": "Import a signed rule set",
  "authority_update": "Update from the issuing authority",
  "authority_from": "Issuing authority: {url}",
  "authority_ok": "Updated from {url}: {what}",
  "authority_error": "Update from {url} failed: {message}"
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
  "title": "Kiểm tra chứng nhận",
  "start_camera": "Bật camera",
  "stop_camera": "Tắt camera",
  "torch": "Đèn",
  "photo": "Ảnh mã QR",
  "wedge": "Máy quét / dán nội dung HC1",
  "drop": "Thả ảnh mã QR hoặc tệp PDF vào đây",
  "import_trust": "Nhập danh sách tin cậy / chứng thư",
  "export_log": "Xuất nhật ký quét",
  "dismiss": "Chạm hoặc bấm phím để quét tiếp",
  "trust_loading": "Đang tải dữ liệu tin cậy…",
  "trust_none": "Chưa có dữ liệu tin cậy: hãy nhập danh sách tin cậy",
  "trust_ok": "{dscs} chứng thư ký; {lists}",
  "trust_list": "danh sách tin cậy {country} số {seq}, cấp {age} ngày trước",
  "trust_files": "chỉ có tệp chứng thư",
  "trust_warn": "Danh sách tin cậy đã {age} ngày: cần cập nhật sớm",
  "trust_refused": "Danh sách tin cậy đã {age} ngày (quá {max}): bị từ chối, hãy nhập bản mới",
  "trust_error": "Dữ liệu tin cậy không dùng được: {message}",
  "clock_wrong": "Đồng hồ thiết bị ({now}) sớm hơn thời điểm cấp danh sách tin cậy ({iat}): hãy kiểm tra đồng hồ",
  "offline": "Ngoại tuyến: kiểm tra bằng danh sách tin cậy đã lưu",
  "scanning": "Đang quét…",
  "camera_error": "Không dùng được camera: {message}",
  "no_qr": "Không tìm thấy mã QR",
  "pdf_unsupported": "{name}: trang này KHÔNG kiểm tra hộ chiếu PDF. Trình duyệt không kiểm tra được chữ ký của chính tệp PDF (PAdES), dấu thời gian, dữ liệu thu hồi, cũng như tên và các mũi tiêm in trên tệp có khớp với mã QR không. Hãy kiểm tra tệp bằng `python -m verifier pdf`, hoặc quét mã QR in trên tệp bằng camera (chỉ kiểm tra mã QR).",
  "log_count": "Đã ghi {n} lượt quét",
  "lang_other": "English",
  "profile": "Quy định nhập cảnh (hồ sơ)",
  "warn_days": "Cảnh báo khi danh sách tin cậy hoặc bộ quy định cũ hơn (ngày)",
  "refuse_days": "Từ chối khi cũ hơn (ngày)",
  "no_profile": "không áp dụng quy định",
  "rules_none": "Chưa có bộ quy định: chỉ kiểm tra chữ ký và định dạng",
  "rules_ok": "{n} quy định của {country}; hồ sơ {profile}",
  "rules_error": "Bộ quy định không dùng được: {message}",
  "rules_refused": "Bộ quy định bị từ chối: {message}",
  "rules_signed": "Bộ quy định đã ký {country} số {seq}, cấp {age} ngày trước",
  "rules_unsigned": "Bộ quy định chưa ký từ máy chủ này",
  "rules_warn": "Bộ quy định đã {age} ngày: cần cập nhật sớm",
  "rules_too_old": "Bộ quy định đã {age} ngày (quá {max}): bị từ chối, hãy nhập bản mới",
  "rules_clock": "Đồng hồ thiết bị sớm hơn thời điểm cấp bộ quy định: hãy kiểm tra đồng hồ",
  "rules_need_trust": "bộ quy định đã ký cần CSCA của danh sách tin cậy trước",
  "import_rules": "Nhập bộ quy định đã ký",
  "authority_update": "Cập nhật từ cơ quan cấp",
  "authority_from": "Cơ quan cấp: {url}",
  "authority_ok": "Đã cập nhật từ {url}: {what}",
  "authority_error": "Cập nhật từ {url} thất bại: {message}"
 }
};

export const REASONS = {
 "image_unreadable": {
  "en": "the image cannot be read",
  "vi": "không đọc được ảnh"
 },
 "no_qr_code": {
  "en": "no QR code found in the image",
  "vi": "không tìm thấy mã QR trong ảnh"
 },
 "too_long": {
  "en": "QR content is too long",
  "vi": "nội dung mã QR quá dài"
 },
 "prefix_missing": {
  "en": "not an EU DCC QR code (no HC1: prefix)",
  "vi": "không phải mã QR chứng nhận EU DCC (thiếu tiền tố HC1:)"
 },
 "base45_invalid": {
  "en": "QR content is corrupted (base45)",
  "vi": "nội dung mã QR bị hỏng (base45)"
 },
 "zlib_invalid": {
  "en": "QR content is corrupted (zlib)",
  "vi": "nội dung mã QR bị hỏng (zlib)"
 },
 "zlib_too_large": {
  "en": "QR content is too large",
  "vi": "nội dung mã QR quá lớn"
 },
 "cose_malformed": {
  "en": "QR content is not a signed certificate",
  "vi": "mã QR không chứa chứng nhận có chữ ký"
 },
 "cose_wrong_tag": {
  "en": "QR content is not a signed certificate",
  "vi": "mã QR không chứa chứng nhận có chữ ký"
 },
 "crit_unsupported": {
  "en": "the QR requires a signature feature this verifier does not support",
  "vi": "mã QR yêu cầu tính năng chữ ký mà thiết bị kiểm tra không hỗ trợ"
 },
 "crit_malformed": {
  "en": "QR content is not a valid signed certificate",
  "vi": "mã QR không chứa chứng nhận có chữ ký hợp lệ"
 },
 "duplicate_map_key": {
  "en": "QR content is malformed (a field appears twice)",
  "vi": "nội dung mã QR sai cấu trúc (một trường xuất hiện hai lần)"
 },
 "trailing_bytes": {
  "en": "QR content is malformed (extra data)",
  "vi": "nội dung mã QR sai cấu trúc (có dữ liệu thừa)"
 },
 "integer_out_of_range": {
  "en": "QR content is malformed (number out of range)",
  "vi": "nội dung mã QR sai cấu trúc (số vượt giới hạn)"
 },
 "cwt_malformed": {
  "en": "certificate content is malformed",
  "vi": "nội dung chứng nhận sai cấu trúc"
 },
 "cwt_no_hcert": {
  "en": "no health certificate in the QR",
  "vi": "mã QR không chứa chứng nhận y tế"
 },
 "unsupported_alg": {
  "en": "unsupported signature algorithm",
  "vi": "thuật toán chữ ký không được hỗ trợ"
 },
 "kid_missing": {
  "en": "signer key not identified",
  "vi": "không xác định được khóa ký"
 },
 "unknown_kid": {
  "en": "signer is not in the trust list",
  "vi": "đơn vị ký không có trong danh sách tin cậy"
 },
 "bad_signature": {
  "en": "signature is not valid (forged or altered)",
  "vi": "chữ ký không hợp lệ (giả mạo hoặc bị sửa đổi)"
 },
 "dsc_untrusted": {
  "en": "signer certificate is not issued by a trusted authority",
  "vi": "chứng thư ký không do cơ quan tin cậy cấp"
 },
 "dsc_expired": {
  "en": "signer certificate is outside its validity period",
  "vi": "chứng thư ký đã hết hạn hoặc chưa có hiệu lực"
 },
 "dsc_revoked": {
  "en": "signer certificate is revoked",
  "vi": "chứng thư ký đã bị thu hồi"
 },
 "dsc_key_unsupported": {
  "en": "signer certificate has a key type that cannot sign an EU DCC",
  "vi": "khóa của chứng thư ký không thuộc loại được phép ký EU DCC"
 },
 "dsc_malformed": {
  "en": "the trusted signer certificate cannot be read",
  "vi": "không đọc được chứng thư ký trong danh sách tin cậy"
 },
 "pss_salt_length": {
  "en": "signature is not valid (RSA-PSS salt length is not 32 bytes)",
  "vi": "chữ ký không hợp lệ (độ dài salt RSA-PSS không phải 32 byte)"
 },
 "uvci_revoked": {
  "en": "this certificate has been revoked",
  "vi": "chứng nhận này đã bị thu hồi"
 },
 "expired": {
  "en": "the certificate has expired",
  "vi": "chứng nhận đã hết hạn"
 },
 "not_yet_valid": {
  "en": "the certificate is not yet valid",
  "vi": "chứng nhận chưa có hiệu lực"
 },
 "exp_missing": {
  "en": "the certificate has no expiry date",
  "vi": "chứng nhận không có ngày hết hạn"
 },
 "iat_missing": {
  "en": "the certificate has no issue date",
  "vi": "chứng nhận không có ngày cấp"
 },
 "time_invalid": {
  "en": "the certificate's dates are not valid",
  "vi": "ngày tháng của chứng nhận không hợp lệ"
 },
 "wrong_certificate_type": {
  "en": "signer may not issue this type of certificate",
  "vi": "đơn vị ký không được cấp loại chứng nhận này"
 },
 "dsc_wrong_usage": {
  "en": "signed with a key that may not sign certificates (trust-list key)",
  "vi": "được ký bằng khóa không được phép ký chứng nhận (khóa danh sách tin cậy)"
 },
 "no_certificate_type": {
  "en": "no vaccination, test or recovery entry",
  "vi": "không có thông tin tiêm chủng, xét nghiệm hoặc khỏi bệnh"
 },
 "schema_invalid": {
  "en": "certificate content does not follow the EU DCC format",
  "vi": "nội dung chứng nhận không đúng định dạng EU DCC"
 },
 "rule_failed": {
  "en": "the certificate does not meet the entry rules (policy profile)",
  "vi": "chứng nhận không đáp ứng quy định nhập cảnh (hồ sơ chính sách)"
 },
 "rule_open": {
  "en": "an entry rule could not be checked",
  "vi": "không thể kiểm tra một quy định nhập cảnh"
 },
 "no_rules": {
  "en": "no entry rule applies to this certificate: refused",
  "vi": "không có quy định nhập cảnh nào áp dụng cho chứng nhận này: từ chối"
 },
 "internal_error": {
  "en": "internal error while verifying",
  "vi": "lỗi nội bộ khi kiểm tra"
 }
};

export function t(lang, key, values = {}) {
  const text = (LABELS[lang] && LABELS[lang][key]) ?? LABELS.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, k) => (k in values ? String(values[k]) : `{${k}}`));
}

export function reasonText(lang, code) {
  const r = REASONS[code];
  return r ? r[lang] || r.en : code;
}
