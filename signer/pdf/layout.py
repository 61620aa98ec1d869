"""Page layout: the static part (drawn once per template) and one passport's values.

    >>> from signer.pdf.layout import PageLayout
    >>> layout = PageLayout.build(template, regular, bold)   # doctest: +SKIP
    >>> layout.static_ops        # labels, lines, headings, note: bytes, built once
    >>> layout.values_ops(data)  # values, doses, QR: bytes, per passport

A4 portrait. Top to bottom: state heading, title (vi/en), the 11 fields of
Decision 5772/QĐ-BYT (label in Vietnamese, English below it, value on the
right), issuer, date of issue and QR expiry, the table of all doses, then
the QR code (lower left) with the verification note and the visible
signature box (lower right). Fonts: ``/F1`` regular, ``/F2`` bold.
"""

from __future__ import annotations

from dataclasses import dataclass

from signer.pdf.font import EmbeddedFont
from signer.pdf.model import DoseRow, PassportData
from signer.pdf.qr import qr_drawing, qr_matrix
from signer.pdf.template import PassportTemplate
from verifier.errors import ConfigError

LABEL_COLOR = "0.10 0.20 0.45"
MUTED = "0.35 0.35 0.35"
ROW_H = 23.0
VALUE_SIZE = 10.5
MIN_SIZE = 6.0


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    w: float
    h: float


@dataclass(frozen=True)
class PageLayout:
    template: PassportTemplate
    regular: EmbeddedFont
    bold: EmbeddedFont
    static_ops: bytes
    field_y: tuple[float, ...]
    issuer_y: tuple[float, ...]
    value_x: float
    value_w: float
    doses_top: float
    qr_rect: Rect
    note_rect: Rect
    sig_rect: Rect

    # -- text helpers ------------------------------------------------------
    def text(
        self, s: str, x: float, y: float, size: float, *, bold: bool = False, color: str = "0 0 0"
    ) -> str:
        if bold:
            return f"BT {color} rg /F2 {size:.2f} Tf {x:.2f} {y:.2f} Td <{self.bold.hex_text(s)}> Tj ET"
        return f"BT {color} rg /F1 {size:.2f} Tf {x:.2f} {y:.2f} Td <{self.regular.hex_text(s)}> Tj ET"

    def fitted(
        self, s: str, x: float, y: float, width: float, size: float, *, bold: bool = False,
        shorten: bool = False,
    ) -> str:
        """Text shrunk to fit ``width`` (down to MIN_SIZE); with ``shorten``, then cut with "…".

        Fields the verifier compares with the QR (name, UVCI, dates) are never
        shortened; table cells and the signature box are.
        """
        font = self.bold if bold else self.regular
        w = font.width(s, size)
        if w > width:
            size = max(MIN_SIZE, size * width / w)
            if shorten and font.width(s, size) > width:
                while s and font.width(s + "…", size) > width:
                    s = s[:-1]
                s = s.rstrip() + "…"
        return self.text(s, x, y, size, bold=bold)

    # -- build -------------------------------------------------------------
    @classmethod
    def build(
        cls, template: PassportTemplate, regular: EmbeddedFont, bold: EmbeddedFont
    ) -> PageLayout:
        t = template
        left, right = t.margin, t.width - t.margin
        width = right - left
        ops: list[str] = []
        layout_args: dict[str, object] = {}
        probe = cls(
            template=t, regular=regular, bold=bold, static_ops=b"", field_y=(), issuer_y=(),
            value_x=0, value_w=0, doses_top=0, qr_rect=Rect(0, 0, 0, 0),
            note_rect=Rect(0, 0, 0, 0), sig_rect=Rect(0, 0, 0, 0),
        )

        def centred(s: str, y: float, size: float, heavy: bool, color: str = "0 0 0") -> None:
            font = probe.bold if heavy else probe.regular
            x = (t.width - font.width(s, size)) / 2
            ops.append(probe.text(s, x, y, size, bold=heavy, color=color))

        y = t.height - t.margin - 4
        for line in t.header:
            centred(line.text, y, line.size, line.bold)
            y -= line.size + 4
        y -= 14
        centred(t.title.vi, y, t.title_size, True, LABEL_COLOR)
        y -= t.title_size * 0.6 + 8
        centred(t.title.en, y, t.title_size * 0.7, False, LABEL_COLOR)
        y -= 12
        ops.append(f"{LABEL_COLOR} RG 1.2 w {left:.2f} {y:.2f} m {right:.2f} {y:.2f} l S")
        y -= 16
        ops.append(probe.text(f"{t.fields_heading.vi} / {t.fields_heading.en}", left, y, 9, bold=True, color=LABEL_COLOR))
        y -= 8
        value_x = left + 170
        field_y: list[float] = []
        issuer_y: list[float] = []
        for group, sink in ((t.fields, field_y), (t.issuer_fields, issuer_y)):
            for label in group:
                top = y
                ops.append(probe.text(label.vi, left + 4, top - 10, 8.5, bold=True, color=LABEL_COLOR))
                ops.append(probe.text(label.en, left + 4, top - 19, 7, color=MUTED))
                sink.append(top - 14)
                y -= ROW_H
                ops.append(f"0.85 G 0.4 w {left:.2f} {y:.2f} m {right:.2f} {y:.2f} l S")
            y -= 6
        # doses table header
        y -= 10
        ops.append(probe.text(f"{t.doses_heading.vi} / {t.doses_heading.en}", left, y, 9, bold=True, color=LABEL_COLOR))
        y -= 6
        ops.append(f"0.92 0.94 0.98 rg {left:.2f} {y - 20:.2f} {width:.2f} 20 re f")
        x = left
        for col in t.dose_columns:
            ops.append(probe.text(col.vi, x + 3, y - 9, 7.5, bold=True, color=LABEL_COLOR))
            ops.append(probe.text(col.en, x + 3, y - 17, 6.5, color=MUTED))
            x += col.width
        doses_top = y - 20
        # QR (lower left), note and signature box (lower right)
        qr = Rect(left - 6, t.margin, t.qr_size, t.qr_size)
        note_x = qr.x + qr.w + 14
        sig = Rect(right - t.sigbox_width, t.margin + 8, t.sigbox_width, t.sigbox_height)
        note = Rect(note_x, sig.y + sig.h + 12, right - note_x, qr.y + qr.h - (sig.y + sig.h + 12))
        ny = note.y + note.h - 10
        for text, size, color in (
            (t.verify_note.vi, 8.0, "0 0 0"),
            (t.verify_note.en, 7.5, MUTED),
        ):
            for wrapped in wrap(text, regular, size, note.w):
                ops.append(probe.text(wrapped, note.x, ny, size, color=color))
                ny -= size + 2.5
            ny -= 4
        layout_args.update(
            static_ops="\n".join(ops).encode("ascii"),
            field_y=tuple(field_y),
            issuer_y=tuple(issuer_y),
            value_x=value_x,
            value_w=right - value_x,
            doses_top=doses_top,
            qr_rect=qr,
            note_rect=note,
            sig_rect=sig,
        )
        layout = cls(template=t, regular=regular, bold=bold, **layout_args)  # type: ignore[arg-type]
        if layout.dose_row_height() < 9.0:
            raise ConfigError(
                f"passport template: {t.max_dose_rows} dose rows do not fit above the QR code"
            )
        return layout

    # -- per passport ------------------------------------------------------
    def values_ops(self, data: PassportData) -> bytes:
        t = self.template
        ops: list[str] = []
        for label, y in zip(t.fields, self.field_y, strict=True):
            bold = label.key in ("full_name", "uvci")
            ops.append(self.fitted(data.field(label.key), self.value_x, y, self.value_w, VALUE_SIZE, bold=bold))
        for label, y in zip(t.issuer_fields, self.issuer_y, strict=True):
            ops.append(self.fitted(data.field(label.key), self.value_x, y, self.value_w, VALUE_SIZE))
        y = self.doses_top
        rows = list(data.doses)
        if len(rows) > t.max_dose_rows:  # the latest ones, and a row saying how many are not shown
            hidden = len(rows) - (t.max_dose_rows - 1)
            note = f"+{hidden} mũi trước đó / earlier doses"
            rows = [DoseRow(dose="…", date="", vaccine=note, lot="", site=""), *rows[-(t.max_dose_rows - 1) :]]
        row_h = self.dose_row_height()
        size = min(8.0, row_h - 2)
        for row in rows:
            y -= row_h
            x = t.margin
            for col in t.dose_columns:
                ops.append(self.fitted(getattr(row, col.key), x + 3, y + (row_h - 0.72 * size) / 2,
                                       col.width - 6, size, shorten=True))
                x += col.width
            ops.append(f"0.85 G 0.4 w {t.margin:.2f} {y:.2f} m {t.width - t.margin:.2f} {y:.2f} l S")
        matrix = qr_matrix(data.hc1, ec_level=t.qr_ec_level)
        q = self.qr_rect
        return (
            "\n".join(ops).encode("ascii")
            + b"\n"
            + qr_drawing(matrix, x=q.x, y=q.y, size=q.w, quiet_zone=t.qr_quiet_zone)
        )

    def dose_row_height(self) -> float:
        """Row height that fits ``max_dose_rows`` rows between the table header and the QR/note."""
        bottom = max(self.qr_rect.y + self.qr_rect.h, self.note_rect.y + self.note_rect.h) + 2
        return min(13.0, (self.doses_top - bottom) / max(1, self.template.max_dose_rows))

    def signature_appearance(self, centre: str, signed_on: str) -> bytes:
        """Appearance stream (form XObject content) of the visible signature box."""
        t, r = self.template, self.sig_rect
        ops = [
            f"{LABEL_COLOR} RG 1 w 0.5 0.5 {r.w - 1:.2f} {r.h - 1:.2f} re S",
            self.text(f"{t.sigbox_heading.vi} / {t.sigbox_heading.en}:", 6, r.h - 13, 7.5, color=MUTED),
            self.fitted(centre, 6, r.h - 29, r.w - 12, 10, bold=True, shorten=True),
            self.text(f"{t.sigbox_date.vi} / {t.sigbox_date.en}: {signed_on}", 6, 9, 7.5, color=MUTED),
        ]
        return "\n".join(ops).encode("ascii")


def wrap(text: str, font: EmbeddedFont, size: float, width: float) -> list[str]:
    """Greedy word wrap to ``width`` points."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        candidate = f"{current} {word}" if current else word
        if current and font.width(candidate, size) > width:
            lines.append(current)
            current = word
        else:
            current = candidate
    if current:
        lines.append(current)
    return lines
