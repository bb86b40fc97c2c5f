"""Value checks of the walk: primitive formats (the types' regexes, real dates,
integer ranges, base64, XHTML, lengths), fixed and pattern values, bindings
(required: error, extensible: warning -- against the validator's value sets),
minimum/maximum values (also R5-style durations relative to now) and attachment sizes."""

from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import date, datetime, timedelta, timezone

from fhir_server.conformance.validation.definitions import Defn
from fhir_server.conformance.validation.xhtml import xhtml_problems

__all__ = ["ValueChecks", "matches_pattern", "same_value"]

ID_RE = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_HTML_TAG = re.compile(r"<[A-Za-z/!]")
_OID = re.compile(r"[0-2](\.(0|[1-9][0-9]*))+")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
BINDABLE = {"code", "Coding", "CodeableConcept", "Quantity", "string", "uri"}


class ValueChecks:
    """Mixin of ``Run``: checks of one value against one element definition."""

    def primitive_format(self, d: Defn, tcode: str, value, path: str) -> None:
        if tcode in ("integer", "positiveInt", "unsignedInt"):
            low = 1 if tcode == "positiveInt" else 0 if tcode == "unsignedInt" else -2147483648
            if not low <= value <= 2147483647:
                self.error("value", path, f"The value {value} is out of range for the type {tcode}")
            return
        if tcode in ("decimal", "boolean"):
            return
        if d.path.endswith(".id") and d.path.count(".") == 1 and tcode in ("string", "id") and \
                d.model and d.model.kind == "resource":
            if not ID_RE.fullmatch(value):
                why = "Too long" if len(value) > 64 else "Invalid Characters"
                self.error("invalid", path, f"Invalid Resource id: {why} ('{value}')"
                           if why != "Too long" else f"Invalid Resource id: Too long ({len(value)} chars)")
            return
        regex = self.v._type_regex(tcode)
        if regex is not None and not regex.fullmatch(value):
            self.error("invalid", path, _format_message(tcode, value))
            return
        if tcode in ("uri", "url", "canonical"):
            self._uri(value, path)
        if tcode == "canonical" and value.startswith("#") and len(value) > 1 and self.ctx is not None \
                and self.resolve(value) is None:
            # a local canonical names a resource contained in the same resource (references.html#canonical)
            self.error("not-found", path, f"The canonical '{value}' names no resource contained here")
        if tcode in ("date", "dateTime", "instant") and len(value) >= 10:
            try:
                date.fromisoformat(value[:10])
            except ValueError:
                self.error("invalid", path, f"Not a valid date/time ('{value}')")
        elif tcode == "xhtml":
            for problem in xhtml_problems(value):
                self.error("invalid", path, problem)
        elif tcode == "markdown" and _HTML_TAG.search(value):
            # markdown is not HTML: a renderer escapes the tag or drops it (FHIR-38714; a warning there too)
            at = _HTML_TAG.search(value).start()
            self.add("warning", "invalid", path, f"The markdown contains content that appears to be an embedded "
                                                 f"HTML tag starting at '{value[at:at + 2]}'. This will (or SHOULD) "
                                                 f"be escaped by the presentation layer")
        elif tcode == "base64Binary":
            try:
                base64.b64decode("".join(value.split()), validate=True)
            except (binascii.Error, ValueError):
                self.error("structure", path, "The value is not valid base64")
        if d.max_length is not None and len(value) > d.max_length:
            self.error("value", path, f"The value is longer than the maximum length {d.max_length} "
                                      f"({len(value)} characters)")

    def _uri(self, value: str, path: str) -> None:
        """The URN forms of datatypes.html#uri: an OID is 'urn:oid:' and dotted numbers,
        a UUID 'urn:uuid:' and the 8-4-4-4-12 hex form; the bare 'oid:' / 'uuid:' are no URIs."""
        if value.startswith(("oid:", "uuid:")):
            self.error("invalid", path, f"URI values cannot start with '{value.split(':', 1)[0]}:' "
                                        f"(use 'urn:{value.split(':', 1)[0]}:')")
        elif value.startswith("urn:oid:") and not _OID.fullmatch(value[8:]):
            self.error("invalid", path, f"'{value}' is not a valid OID")
        elif value.startswith("urn:uuid:") and not _UUID.fullmatch(value[9:]):
            self.error("invalid", path, f"'{value}' is not a valid UUID")

    def values(self, d: Defn, tcode: str, value, path: str) -> None:
        if d.fixed is not None and not same_value(value, d.fixed[1]):
            if isinstance(d.fixed[1], dict | list):
                self.error("value", path, f"Value does not match the fixed value {_show(d.fixed[1])} "
                                          f"required by {d.id}")
            else:
                self.error("value", path, f"Value is '{_show(value)}' but must be the fixed value "
                                          f"'{_show(d.fixed[1])}' ({d.id})")
        if d.pattern is not None and not matches_pattern(value, d.pattern[1]):
            self.error("value", path, f"Value does not match the pattern {_show(d.pattern[1])} required by {d.id}")
        if d.binding is not None and tcode in BINDABLE:
            self.binding(d, tcode, value, path)
        if d.min_value is not None or d.max_value is not None:
            self.min_max(d, tcode, value, path)

    def binding(self, d: Defn, tcode: str, value, path: str) -> None:
        strength, url = d.binding
        if strength not in ("required", "extensible"):
            return
        codes = self.v._codes(url)
        if codes is None:
            if strength == "required" and not self.v._skipped(url):
                self.add("warning", "not-found", path, f"The value set '{url}' is not known here; "
                                                       f"the code was not checked")
            return
        ok = self._in_value_set(value, codes, tcode)
        if ok is not False:
            return
        severity = "error" if strength == "required" else "warning"
        tail = "is required from this value set" if strength == "required" else \
            "should come from this value set unless it has no suitable code"
        if tcode == "CodeableConcept":
            self.add(severity, "code-invalid", path,
                     f"None of the codings provided are in the value set '{url}', and a coding {tail}")
        else:
            shown = _code_text(value, tcode)
            self.add(severity, "code-invalid", path,
                     f"The code provided ({shown}) is not in the value set '{url}', and a code {tail}")

    @staticmethod
    def _in_value_set(value, codes, tcode: str | None = None) -> bool | None:
        """True / False, or None when there is nothing to judge (no code)."""
        pairs, by_code, systems = codes
        if isinstance(value, str):
            return value in by_code
        if not isinstance(value, dict):
            return None
        if tcode == "CodeableConcept" or (tcode is None and "coding" in value):
            codings = value.get("coding")
            found = [_coding_in(c, pairs, by_code) for c in codings if isinstance(c, dict) and "code" in c] \
                if isinstance(codings, list) else []
            found = [f for f in found if f is not None]
            return any(found) if found else None
        if "code" not in value:
            return None
        return _coding_in(value, pairs, by_code)

    def min_max(self, d: Defn, tcode: str, value, path: str) -> None:
        for bound, sign in ((d.min_value, -1), (d.max_value, 1)):
            if bound is None:
                continue
            kind, limit = bound
            got, want = value, limit
            if kind == "Duration":  # relative to now: minimum now - duration, maximum now + duration
                want = _shifted_now(limit, sign) if tcode in ("date", "dateTime", "instant") else None
                if want is None:
                    continue
            elif kind == "Quantity":
                if not isinstance(value, dict) or not isinstance(limit, dict):
                    continue
                if value.get("code") != limit.get("code") or value.get("system") != limit.get("system"):
                    continue
                got, want = value.get("value"), limit.get("value")
            if isinstance(got, str) and isinstance(want, str):
                n = min(len(got), len(want))  # dates of different precision: compare what both have
                got, want = got[:n], want[:n]
            elif not (_is_number(got) and _is_number(want)):
                continue
            if (sign < 0 and got < want) or (sign > 0 and got > want):
                word = "less than the specified minimum" if sign < 0 else "greater than the specified maximum"
                self.error("invalid", path, f"The value in the instance ({_show(got)}) is {word} value "
                                            f"({_show(want)})")

    def attachment(self, value: dict, path: str) -> None:
        data, size = value.get("data"), value.get("size")
        if isinstance(data, str) and isinstance(size, int) and not isinstance(size, bool):
            try:
                actual = len(base64.b64decode("".join(data.split()), validate=True))
            except (binascii.Error, ValueError):
                return
            if actual != size:
                self.error("structure", path, f"Stated Attachment Size {size} does not match actual "
                                              f"attachment size {actual}")


_UNIT_DAYS = {"a": 365.25, "mo": 30.4375, "wk": 7, "d": 1, "h": 1 / 24, "min": 1 / 1440, "s": 1 / 86400}


def _shifted_now(duration, sign: int) -> str | None:
    if not isinstance(duration, dict) or not isinstance(duration.get("value"), int | float):
        return None
    days = _UNIT_DAYS.get(duration.get("code") or duration.get("unit"))
    if days is None:
        return None
    try:
        moment = datetime.now(timezone.utc) + sign * timedelta(days=days * duration["value"])
    except OverflowError:
        return None
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


def _coding_in(coding: dict, pairs, by_code) -> bool | None:
    code = coding.get("code")
    system = coding.get("system")
    if not isinstance(code, str) or not isinstance(system, str | None):
        return None  # malformed: reported by the walk
    if system is None:
        return code in by_code
    return (system, code) in pairs


def _code_text(value, tcode: str) -> str:
    if isinstance(value, dict):
        return f"{value.get('system', '')}#{value.get('code', '')}"
    return repr(value)


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def same_value(value, fixed) -> bool:
    """fixed[x]: the same value (booleans are not numbers)."""
    if isinstance(fixed, bool) or isinstance(value, bool):
        return isinstance(fixed, bool) and value is fixed
    if isinstance(fixed, dict):
        return isinstance(value, dict) and value.keys() == fixed.keys() and all(
            same_value(value[k], v) for k, v in fixed.items())
    if isinstance(fixed, list):
        return isinstance(value, list) and len(value) == len(fixed) and all(
            same_value(a, b) for a, b in zip(value, fixed))
    return value == fixed


def matches_pattern(value, pattern) -> bool:
    """pattern[x]: everything the pattern has is in the value (lists: each pattern item
    is matched by some item of the value)."""
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(k in value and matches_pattern(value[k], v)
                                               for k, v in pattern.items())
    if isinstance(pattern, list):
        return isinstance(value, list) and all(any(matches_pattern(v, p) for v in value) for p in pattern)
    return same_value(value, pattern)


def _show(value) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _format_message(tcode: str, value: str) -> str:
    if tcode in ("dateTime", "instant") and "T" in value and not re.search(r"(Z|[+-]\d\d:\d\d)$", value):
        return f"If a date has a time, it must have a timezone ('{value}')"
    if tcode in ("date", "dateTime", "instant", "time"):
        return f"Not a valid {'date' if tcode == 'date' else tcode} format: '{value}'"
    if tcode == "base64Binary":
        return "The base64 content is not valid base64"
    return f"The value '{value}' is not a valid {tcode}"

