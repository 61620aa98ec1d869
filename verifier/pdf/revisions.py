"""What was appended after the certification signature: validation data only (DocMDP P=1).

    >>> from verifier.pdf.revisions import update_problem
    >>> # update_problem(reader, signed_revision) -> None, or why the update is not allowed

The passport is certified with DocMDP P=1 (ISO 32000-2 section 12.8.2.2.2):
"no changes to the document are permitted; any change invalidates the
signature", PAdES (ETSI EN 319 142-1 section 5.4, 5.5) adding only that
validation data (the Document Security Store) and document timestamps do
not count as changes. pyHanko's difference analysis is more lenient than
that: it accepts, at its ``LTA_UPDATES`` level, an update of the document
information dictionary or the XMP metadata, so a forged title would show in
the viewer's title bar (the passport sets ``/DisplayDocTitle``). This is
the strict whitelist, applied to every revision after the signed one:

1. the trailer keeps its ``/Root``, ``/Info`` and ``/Encrypt`` references;
   no object is freed;
2. an object that existed before may change only when it is
   a. the Document Security Store (any content),
   b. the catalog, with only ``/DSS``, ``/AcroForm`` and ``/Extensions``
      different, and the form's ``/Fields`` growing by document timestamp
      fields and nothing else in the form changed,
   c. a page, with only ``/Annots`` growing by document timestamp widgets,
   d. the form (when indirect), a page's ``/Annots`` or the form's ``/Fields``
      array (when indirect), under the same rules;
3. new objects are free: they matter only through a reference from a
   changed object, which 2. constrains.

A document timestamp field is a signature field whose value is a
``/Type /DocTimeStamp`` dictionary (ISO 32000-2 section 12.8.5); its widget
must be invisible (a zero-area rectangle, or hidden), since a widget's
appearance could paint over the page.
Untrusted input: the caller catches whatever pyHanko raises.
"""

from __future__ import annotations

from typing import Any

from pyhanko.pdf_utils import generic

#: Catalog entries an update may change (ETSI EN 319 142-1 5.4: DSS; ISO 32000-2 12.8.5).
_CATALOG_FREE = frozenset({"/DSS", "/AcroForm", "/Extensions"})
MAX_CHANGED_OBJECTS = 1000


def _resolve(value: Any) -> Any:
    return value.get_object() if isinstance(value, generic.IndirectObject) else value  # type: ignore[no-untyped-call]


def _is_doc_timestamp_field(value: Any) -> bool:
    """A signature field holding a document timestamp; when it is its own widget, invisible."""
    field = _resolve(value)
    if not isinstance(field, generic.DictionaryObject):
        return False
    sig = _resolve(field.get("/V"))
    ok = (
        field.get("/FT") == "/Sig"
        and isinstance(sig, generic.DictionaryObject)
        and sig.get("/Type") == "/DocTimeStamp"
    )
    if ok and field.get("/Subtype") == "/Widget":
        return _invisible(field)
    return ok


def _invisible(annot: generic.DictionaryObject) -> bool:
    """A widget that draws nothing: a zero-area /Rect, or the Hidden/NoView flags (2, 32)."""
    try:
        rect = [float(v) for v in _resolve(annot.get("/Rect"))]
        flags = int(_resolve(annot.get("/F", 0)))
    except (TypeError, ValueError):
        return False
    zero = len(rect) == 4 and (rect[0] == rect[2] or rect[1] == rect[3])
    return zero or bool(flags & 2) or bool(flags & 32)


def _is_doc_timestamp_widget(value: Any) -> bool:
    """A document timestamp's widget, invisible: a visible one could paint over the page."""
    annot = _resolve(value)
    if not isinstance(annot, generic.DictionaryObject) or annot.get("/Subtype") != "/Widget":
        return False
    is_ts = _is_doc_timestamp_field(annot) or _is_doc_timestamp_field(annot.get("/Parent"))
    return is_ts and _invisible(annot)


def _grown_by(old: Any, new: Any, allowed: Any) -> bool:
    """``new`` is the array ``old`` with items appended, each passing ``allowed``."""
    old, new = _resolve(old), _resolve(new)
    old_items = list(old) if isinstance(old, generic.ArrayObject) else []
    if old is not None and not isinstance(old, generic.ArrayObject):
        return False
    if not isinstance(new, generic.ArrayObject) or len(new) < len(old_items):
        return False
    if list(new)[: len(old_items)] != old_items:
        return False
    return all(allowed(item) for item in list(new)[len(old_items) :])


def _same_except(old: Any, new: Any, free: frozenset[str]) -> bool:
    if not isinstance(old, generic.DictionaryObject) or not isinstance(new, generic.DictionaryObject):
        return False
    keys = (set(old) | set(new)) - free
    return all(k in old and k in new and old.raw_get(k) == new.raw_get(k) for k in keys)


def _form_ok(old: Any, new: Any) -> bool:
    old, new = _resolve(old), _resolve(new)
    if old is None and new is None:
        return True
    if not isinstance(new, generic.DictionaryObject):
        return False
    if old is None:
        old = generic.DictionaryObject()  # type: ignore[no-untyped-call]
    return _same_except(old, new, frozenset({"/Fields"})) and _grown_by(
        old.get("/Fields"), new.get("/Fields"), _is_doc_timestamp_field
    )


def update_problem(reader: Any, signed_revision: int) -> str | None:
    """Why the revisions after ``signed_revision`` are more than validation data, or None."""
    total = reader.xrefs.total_revisions
    for rev in range(signed_revision + 1, total):
        problem = _revision_problem(reader, rev)
        if problem is not None:
            return f"revision {rev + 1}: {problem}"
    return None


def _revision_problem(reader: Any, rev: int) -> str | None:
    old = reader.get_historical_resolver(rev - 1)
    new = reader.get_historical_resolver(rev)
    # 1. trailer and freed objects
    old_trailer, new_trailer = old.trailer_view, new.trailer_view
    for key in ("/Root", "/Info", "/Encrypt"):
        before = old_trailer.raw_get(key) if key in old_trailer else None
        after = new_trailer.raw_get(key) if key in new_trailer else None
        if before != after:
            return f"the trailer's {key} was replaced"
    if reader.xrefs.refs_freed_in_revision(rev):
        return "objects were deleted"
    root_ref = old_trailer.raw_get("/Root")
    old_root = old_trailer["/Root"]
    dss_ref = old_root.raw_get("/DSS") if "/DSS" in old_root else None
    form_ref = old_root.raw_get("/AcroForm") if "/AcroForm" in old_root else None
    page_refs = _page_refs(old_root)
    changed = sorted(reader.xrefs.explicit_refs_in_revision(rev), key=lambda r: r.idnum)
    if len(changed) > MAX_CHANGED_OBJECTS:
        return "too many objects changed"
    for ref in changed:
        if reader.xrefs.get_introducing_revision(ref) == rev:
            continue  # 3. a new object
        before, after = old.get_object(ref), new.get_object(ref)
        if before == after and type(before) is type(after) and not isinstance(
            before, generic.StreamObject
        ):
            continue
        if isinstance(dss_ref, generic.IndirectObject) and ref == dss_ref.reference:
            continue  # 2a
        if isinstance(root_ref, generic.IndirectObject) and ref == root_ref.reference:
            if _same_except(before, after, _CATALOG_FREE) and (
                (isinstance(form_ref, generic.IndirectObject)
                and after.raw_get("/AcroForm") == form_ref)
                or _form_ok(before.get("/AcroForm"), after.get("/AcroForm"))
            ):
                continue  # 2b
            return "the catalog changed beyond validation data"
        if isinstance(form_ref, generic.IndirectObject) and ref == form_ref.reference:
            if _form_ok(before, after):
                continue  # 2d
            return "the form changed beyond a document timestamp"
        if ref in page_refs:
            if _same_except(before, after, frozenset({"/Annots"})) and _grown_by(
                before.get("/Annots"), after.get("/Annots"), _is_doc_timestamp_widget
            ):
                continue  # 2c
            return "a page changed"
        if isinstance(before, generic.ArrayObject) and _grown_by(
            before, after, lambda v: _is_doc_timestamp_field(v) or _is_doc_timestamp_widget(v)
        ):
            continue  # 2d: an indirect /Fields or /Annots array
        return f"object {ref.idnum} changed"
    return None


def _page_refs(root: Any) -> set[Any]:
    """References of the pages (first level of a flat page tree, as passports have)."""
    out: set[Any] = set()
    pages = _resolve(root.get("/Pages"))
    if not isinstance(pages, generic.DictionaryObject):
        return out
    kids = _resolve(pages.get("/Kids"))
    for kid in list(kids)[:1000] if isinstance(kids, generic.ArrayObject) else []:
        if isinstance(kid, generic.IndirectObject):
            out.add(kid.reference)
    return out
