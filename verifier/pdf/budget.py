"""How much drawing work page 1 asks for, bounded before poppler renders it.

    >>> from verifier.pdf.budget import page_work_problem
    >>> page_work_problem(b"%PDF-1.7 not really")
    ('page_unrenderable', 'page 1 cannot be read (PdfReadError)')
    >>> # page_work_problem(passport_pdf) -> None (about 3,000 operations)

Fuzzing (issue 8, point 5) found a 329 KB PDF whose compressed content
stream holds 10 million drawing operations: rendering it kept ``verifier
pdf`` busy 21 to 60 s. A passport page needs about 3,000 operations and
40 KB of content, so before rendering, page 1 is measured:

1. the content streams poppler would run for page 1 (``/Contents``, the
   form XObjects they draw with ``Do``, recursively, each time they are
   drawn, and the annotations' normal appearances) are decoded, at most
   :data:`MAX_CONTENT_BYTES` in all (a Flate bomb stops there);
2. their operators are counted (an overestimate: words in strings count
   too), at most :data:`MAX_CONTENT_OPS` in all;
3. a form XObject that draws itself, a page tree deeper than
   :data:`MAX_DEPTH`, or a content filter other than FlateDecode (our
   passports use nothing else) is refused.

What this does not count (tiling patterns, Type 3 glyphs, image sizes) is
bounded by the time limit of the rendering itself
(:mod:`verifier.pdf.extract`). Untrusted input: never raises.

Before pyHanko parses the file at all, :func:`file_structure_problem` reads
the cross-reference sizes from the raw bytes: pyHanko spends about 10 µs per
cross-reference entry an 18 KB file can declare (3 million: 34 s) and about
150 µs per object appended after the signature (its modification analysis
reads them all: 200,000 objects, 26 s). A passport has about 30 objects in
one to three revisions.
"""

from __future__ import annotations

import contextlib
import io
import re
import threading
import zlib
from collections.abc import Iterator, Mapping
from typing import Any

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.reader import PdfFileReader

from verifier.pdf import hexstring

hexstring.install()  # the readers of every check: a signature's hex string read in bulk

#: About 30 times what a passport page needs.
MAX_CONTENT_OPS = 100_000
#: Objects and cross-reference entries per file (a passport has about 30).
MAX_PDF_OBJECTS = 5_000
#: Revisions (``startxref`` sections; a passport has one to three).
MAX_REVISIONS = 50
#: Separators outside streams, about one per PDF token (a passport has about
#: 3,000; pyHanko parses about 100,000 tokens per second).
MAX_PDF_TOKENS = 200_000
#: About 100 times a passport page's content, decoded.
MAX_CONTENT_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 16
#: Reasons (the ``qr`` check: page 1 is not rendered).
TOO_COMPLEX = "page_too_complex"
#: Reason of ``pdf_signature`` for a file refused before parsing.
PDF_TOO_COMPLEX = "pdf_too_complex"
UNRENDERABLE = "page_unrenderable"

#: An operator: a bare word not part of a name (/Name) or a number.
_OPERATOR = re.compile(rb"(?<![/\w.#])[A-Za-z'\"][A-Za-z0-9*'\"]*")
#: ``/Name Do``: a form or image XObject drawn.
_DO = re.compile(rb"/([^\s/\[\]()<>{}%]+)\s*Do(?![A-Za-z0-9*'\"])")


_SIZE = re.compile(rb"/Size\s*(\d{1,15})(\s+\d+\s+R)?")
_INDEX = re.compile(rb"/Index\s*\[([^\]]{0,4000})\]?")


def file_structure_problem(data: bytes) -> tuple[str, str] | None:
    """``(pdf_too_complex, message)`` when the raw file declares more than a passport's bounds.

    Read from the bytes with regular expressions (a tenth of a second for
    20 MB), so a hostile cross-reference section costs nothing to refuse.
    Over-counting (the patterns inside strings) only makes this stricter.
    """
    revisions = data.count(b"startxref")
    if revisions > MAX_REVISIONS or data.count(b"xref") > 2 * MAX_REVISIONS:
        return PDF_TOO_COMPLEX, f"the PDF has more than {MAX_REVISIONS} revisions"
    declared = 0
    for match in _SIZE.finditer(data):
        if match.group(2):
            return PDF_TOO_COMPLEX, "the PDF's cross-reference size is an indirect object"
        declared = max(declared, int(match.group(1)))
    for match in _INDEX.finditer(data):
        numbers = match.group(1).split()
        if not all(n.isdigit() for n in numbers) or not match.group(0).endswith(b"]"):
            return PDF_TOO_COMPLEX, "the PDF's cross-reference index is not a list of numbers"
        declared = max(declared, sum(int(n) for n in numbers[1::2]))
    entries = 0  # a cross-reference table: 20 bytes per entry, up to its trailer
    at = data.find(b"xref")
    while at >= 0:  # at most 2 * MAX_REVISIONS times
        start = at + 4
        if at == 0 or not data[at - 1 : at].isalpha():  # not "startxref"
            end = data.find(b"trailer", start)
            entries += ((end if end >= 0 else len(data)) - start) // 20
        at = data.find(b"xref", start)
    objects = data.count(b"obj") // 2  # "obj" and "endobj"
    streams = data.count(b"stream") // 2  # "stream" and "endstream"
    worst = max(declared, entries, objects, streams)
    if worst > MAX_PDF_OBJECTS:
        return PDF_TOO_COMPLEX, (
            f"the PDF declares {worst:,} objects; a passport has about 30 "
            f"(at most {MAX_PDF_OBJECTS:,} are checked)"
        )
    tokens = _tokens_outside_streams(data)
    if tokens > MAX_PDF_TOKENS:
        return PDF_TOO_COMPLEX, (
            f"the PDF's objects hold about {tokens:,} tokens (at most {MAX_PDF_TOKENS:,} are read)"
        )
    return None


def _tokens_outside_streams(data: bytes) -> int:
    """About how many tokens pyHanko would parse: separators between ``stream`` bodies."""
    total = 0
    at = 0
    while at < len(data):  # at most 2 * MAX_PDF_OBJECTS turns (checked by the caller)
        start = data.find(b"stream", at)
        part = data[at : len(data) if start < 0 else start]
        total += sum(part.count(c) for c in (b" ", b"\n", b"\r", b"/", b"[", b"(", b"<"))
        if start < 0:
            break
        if data[max(start - 3, 0) : start] == b"end":  # "endstream" without its "stream"
            at = start + 6
            continue
        end = data.find(b"endstream", start + 6)
        if end < 0:
            break
        at = end + 9
    return total


_shared = threading.local()


@contextlib.contextmanager
def one_reader(data: bytes) -> Iterator[None]:
    """Within it, :func:`reader_for` gives one reader for ``data`` (this very bytes
    object): :func:`verifier.pdf.verify.verify_pdf`'s fast signature check, page budget
    and vector QR then parse the cross-reference table and page 1's objects once, not
    three times. They only read from it (pyHanko caches the objects it resolved and the
    streams it decoded); a reader that cannot be made is not kept (each asks again)."""
    previous = getattr(_shared, "entry", None)
    _shared.entry = [data, None]
    try:
        yield
    finally:
        _shared.entry = previous


def reader_for(data: bytes) -> PdfFileReader:
    """A non-strict pyHanko reader of ``data``; the shared one inside :func:`one_reader`."""
    entry = getattr(_shared, "entry", None)
    if entry is None or entry[0] is not data:
        return PdfFileReader(io.BytesIO(data), strict=False)
    if entry[1] is None:
        entry[1] = PdfFileReader(io.BytesIO(data), strict=False)
    reader: PdfFileReader = entry[1]
    return reader


class _TooMuch(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def page_work_problem(data: bytes) -> tuple[str, str] | None:
    """``(reason, message)`` when page 1 is too much work to render, or unreadable; else None."""
    try:
        _Meter().measure(data)
    except _TooMuch as err:
        return err.reason, err.message
    except RecursionError:
        return TOO_COMPLEX, "page 1 nests its drawings too deeply"
    except Exception as err:  # untrusted input: pyHanko raises many types
        return UNRENDERABLE, f"page 1 cannot be read ({type(err).__name__})"
    return None


class _Meter:
    def __init__(self) -> None:
        self.ops = 0
        self.bytes = 0
        self.cost: dict[int, int] = {}  # id of a form XObject -> operations per drawing
        self.drawing: set[int] = set()  # forms being measured (cycle check)

    def measure(self, data: bytes) -> None:
        reader = reader_for(data)
        if reader.encrypted:
            raise _TooMuch(UNRENDERABLE, "the PDF is encrypted")
        page = _first_page(reader.root["/Pages"].get_object())
        resources = _inherited(page, "/Resources")
        for stream in _streams(page.get("/Contents")):
            self._add(self._stream_cost(stream, resources, depth=0))
        for annot in _array(page.get("/Annots"))[:1000]:
            annot = annot.get_object()
            if not isinstance(annot, generic.DictionaryObject):
                continue
            for stream in _appearances(_dict(annot.get("/AP")).get("/N")):
                own = stream.get("/Resources", resources)
                self._add(self._stream_cost(stream, own, depth=0))

    def _add(self, ops: int) -> None:
        self.ops += ops
        if self.ops > MAX_CONTENT_OPS:
            raise _TooMuch(
                TOO_COMPLEX,
                f"page 1 asks for more than {MAX_CONTENT_OPS:,} drawing operations",
            )

    def _stream_cost(self, stream: generic.StreamObject, resources: Any, *, depth: int) -> int:
        """Operations one drawing of ``stream`` runs (forms it draws included)."""
        if depth > MAX_DEPTH:
            raise _TooMuch(TOO_COMPLEX, "page 1 nests its drawings too deeply")
        content = self._decode(stream)
        ops = len(_OPERATOR.findall(content))
        if ops > MAX_CONTENT_OPS:
            self._add(ops)
        xobjects = _dict(_dict(resources).get("/XObject"))
        for match in _DO.finditer(content):
            name = "/" + _name_text(match.group(1))
            target = xobjects.get(name)
            if target is None:
                continue
            ops += self._form_cost(target, resources, depth=depth + 1)
            if ops > MAX_CONTENT_OPS:
                self._add(ops)
        return ops

    def _form_cost(self, ref: Any, resources: Any, *, depth: int) -> int:
        form = ref.get_object()
        if not isinstance(form, generic.StreamObject) or form.get("/Subtype") != "/Form":
            return 1  # an image: one operation (its size is the renderer's time limit)
        key = id(form)
        if key in self.cost:
            return self.cost[key]
        if key in self.drawing:
            raise _TooMuch(TOO_COMPLEX, "a form XObject of page 1 draws itself")
        self.drawing.add(key)
        cost = self._stream_cost(form, form.get("/Resources", resources), depth=depth)
        self.drawing.discard(key)
        self.cost[key] = cost
        return cost

    def _decode(self, stream: generic.StreamObject) -> bytes:
        filters = [str(f) for f in _array(stream.get("/Filter"))]
        raw = stream.encoded_data or b""
        room = MAX_CONTENT_BYTES - self.bytes
        if not filters:
            content = raw[: room + 1]
        elif filters == ["/FlateDecode"]:
            inflater = zlib.decompressobj()
            try:
                content = inflater.decompress(raw, room + 1)
            except zlib.error:
                content = b""  # poppler draws nothing from a broken stream either
        else:
            raise _TooMuch(
                UNRENDERABLE, f"page 1 uses a content filter passports do not: {filters}"[:200]
            )
        self.bytes += len(content)
        if self.bytes > MAX_CONTENT_BYTES:
            raise _TooMuch(
                TOO_COMPLEX, f"page 1's content is larger than {MAX_CONTENT_BYTES:,} bytes"
            )
        return content


def _first_page(node: Any, depth: int = 0) -> generic.DictionaryObject:
    """Page 1: the first leaf of the page tree (what pdftoppm -f 1 renders)."""
    if depth > MAX_DEPTH:
        raise _TooMuch(UNRENDERABLE, "the page tree is too deep")
    if not isinstance(node, generic.DictionaryObject):
        raise _TooMuch(UNRENDERABLE, "the PDF has no page")
    if node.get("/Type") == "/Pages" or "/Kids" in node:
        kids = _array(node.get("/Kids"))
        if not kids:
            raise _TooMuch(UNRENDERABLE, "the PDF has no page")
        return _first_page(kids[0].get_object(), depth + 1)
    return node


def _inherited(page: generic.DictionaryObject, key: str) -> Any:
    node: Any = page
    for _ in range(MAX_DEPTH):
        if not isinstance(node, generic.DictionaryObject):
            return None
        if key in node:
            return node[key]
        node = node.get("/Parent")
        node = node.get_object() if node is not None else None
    return None


def _array(value: Any) -> list[Any]:
    if value is None:
        return []
    value = value.get_object()
    return list(value) if isinstance(value, generic.ArrayObject) else [value]


def _dict(value: Any) -> Mapping[str, Any]:
    value = value.get_object() if value is not None else None
    return value if isinstance(value, generic.DictionaryObject) else {}


def _streams(value: Any) -> Iterator[generic.StreamObject]:
    for item in _array(value)[:1000]:
        item = item.get_object()
        if isinstance(item, generic.StreamObject):
            yield item


def _appearances(normal: Any) -> Iterator[generic.StreamObject]:
    """An annotation's normal appearance: one stream, or one per state."""
    if normal is None:
        return
    normal = normal.get_object()
    if isinstance(normal, generic.StreamObject):
        yield normal
    elif isinstance(normal, generic.DictionaryObject):
        for state in list(normal.values())[:100]:
            state = state.get_object()
            if isinstance(state, generic.StreamObject):
                yield state


def _name_text(raw: bytes) -> str:
    """A PDF name's text with ``#xx`` escapes resolved (as pyHanko keys hold it)."""
    text = re.sub(rb"#([0-9A-Fa-f]{2})", lambda m: bytes([int(m.group(1), 16)]), raw)
    return text.decode("latin-1")
