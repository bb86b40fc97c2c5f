"""Questionnaires and QuestionnaireResponses (questionnaire.html,
questionnaireresponse.html), as HL7's reference validator reads them.

* A Questionnaire's ``enableWhen.question`` names an item of the questionnaire, not
  the item itself nor one inside it.
* A QuestionnaireResponse against its Questionnaire -- one the validator was given
  (by canonical url, a version allowed) or one contained in the response ('#id'):
  each item's linkId is the questionnaire's at that level (elsewhere: "in the wrong
  place"), in the questionnaire's order, once unless the item repeats; its text is
  the item's; answers only where the item takes them, one unless it repeats, of the
  item's type; a coded answer is one of the ``answerOption`` codings, or in the
  ``answerValueSet`` (a ValueSet contained in the questionnaire -- or in the
  response that contains the questionnaire -- or one the validator knows); a
  string, integer, date or time answer to a ``choice`` item is one of its options.
  ``enableWhen`` is evaluated (operators exists, =, !=, >, <, >=, <=; enableBehavior
  all/any, over the answers to the question anywhere in the response): a disabled
  item has no answers, and an enabled required item is answered -- an error unless
  the response is in progress.
"""

from __future__ import annotations

__all__ = ["check_questionnaire", "check_questionnaire_response"]

#: the answer value types an item type takes (questionnaire.html#item-types)
ANSWER_TYPES = {
    "boolean": ("boolean",), "decimal": ("decimal",), "integer": ("integer",), "date": ("date",),
    "dateTime": ("dateTime",), "time": ("time",), "string": ("string",), "text": ("string",),
    "url": ("uri",), "attachment": ("Attachment",), "reference": ("Reference",), "quantity": ("Quantity",),
    "choice": ("Coding", "date", "time", "integer", "string"),
    "open-choice": ("Coding", "date", "time", "integer", "string"),
}


def _list(value) -> list:
    return value if isinstance(value, list) else []


def _items(holder) -> list[dict]:
    return [i for i in _list(holder.get("item") if isinstance(holder, dict) else None) if isinstance(i, dict)]


# ------------------------------------------------------------------------------ Questionnaire


def check_questionnaire(run, q: dict, path: str) -> None:
    _q_items(run, q, q, path)


def _q_items(run, holder: dict, q: dict, path: str) -> None:
    for i, item in enumerate(_list(holder.get("item"))):
        if not isinstance(item, dict):
            continue
        where = f"{path}.item[{i}]"
        for n, ew in enumerate(_list(item.get("enableWhen"))):
            question = ew.get("question") if isinstance(ew, dict) else None
            if not isinstance(question, str):
                continue
            if _find(_items(item), question) is not None:
                run.error("business-rule", f"{where}.enableWhen[{n}]", f"The enableWhen question '{question}' "
                                                                         f"is an item inside this one")
            elif question == item.get("linkId"):
                run.error("business-rule", f"{where}.enableWhen[{n}]", "An item cannot be enabled by itself")
            elif _find(_items(q), question) is None:
                run.error("business-rule", f"{where}.enableWhen[{n}]", f"The enableWhen question '{question}' "
                                                                         f"is not an item of the questionnaire")
        _q_items(run, item, q, where)


def _find(items: list[dict], link: str) -> dict | None:
    for item in items:
        if item.get("linkId") == link:
            return item
        found = _find(_items(item), link)
        if found is not None:
            return found
    return None


# ------------------------------------------------------------------------------ QuestionnaireResponse


class _Response:
    """One response under validation: its questionnaire, where '#' references resolve,
    whether it is in progress."""

    def __init__(self, run, qr: dict, q: dict, container: dict) -> None:
        self.run, self.qr, self.q, self.container = run, qr, q, container
        self.in_progress = qr.get("status") == "in-progress"


def check_questionnaire_response(run, qr: dict, path: str) -> None:
    url = qr.get("questionnaire")
    if not isinstance(url, str):
        return
    if url.startswith("#"):
        q = next((c for c in _list(qr.get("contained")) if isinstance(c, dict)
                  and c.get("resourceType") == "Questionnaire" and c.get("id") == url[1:]), None)
        container = qr
    else:
        q = run.v._questionnaire(url)
        container = q
    if q is None:
        return
    _level(_Response(run, qr, q, container), _items(q), qr, path)


def _level(r: _Response, q_items: list[dict], holder: dict, path: str) -> None:
    """The response items of *holder* against the questionnaire items *q_items*."""
    groups: dict[str, list[tuple[int, dict]]] = {}
    order = {i.get("linkId"): n for n, i in enumerate(q_items)}
    last = -1
    for n, item in enumerate(_list(holder.get("item"))):
        if not isinstance(item, dict):
            continue
        link = item.get("linkId")
        if not isinstance(link, str) or not link:
            r.run.error("required", path, "No LinkId, so can't be validated")
            continue
        if link not in order:
            elsewhere = _find(_items(r.q), link)
            if elsewhere is None:
                r.run.error("not-found", f"{path}.item[{n}]", f"LinkId '{link}' not found in questionnaire")
            else:
                r.run.error("structure", f"{path}.item[{n}]", f"Structural Error: item with linkid {link} is "
                                                             f"in the wrong place")
                _item(r, elsewhere, item, f"{path}.item[{n}]")
            continue
        if order[link] < last:
            r.run.error("structure", f"{path}.item[{n}]", "Structural Error: items are out of order")
        last = order[link]
        if item.get("answer") or item.get("item"):
            groups.setdefault(link, []).append((n, item))
    for qi in q_items:
        link = qi.get("linkId")
        found = groups.get(link, [])
        enabled = _enabled(r, qi)
        if len(found) > 1 and not qi.get("repeats"):
            r.run.error("structure", f"{path}.item[{found[1][0]}]", f"Only one response item with the linkId "
                                                                    f"'{link}' is allowed (the item does not repeat)")
        for n, item in found:
            where = f"{path}.item[{n}]"
            if not enabled and item.get("answer"):
                r.run.error("invalid", where, f"Item has answer, even though it is not enabled (item id = '{link}')")
            _item(r, qi, item, where)
        if not found and enabled and qi.get("required") and qi.get("type") not in ("display",):
            _missing(r, path, f"No response answer found for required item '{link}'")


def _missing(r: _Response, path: str, message: str) -> None:
    r.run.add("warning" if r.in_progress else "error", "required", path, message)


def _item(r: _Response, qi: dict, item: dict, path: str) -> None:
    kind = qi.get("type")
    text = item.get("text")
    if isinstance(text, str) and text and text != qi.get("text"):
        r.run.error("invalid", path, f"If text exists, it must match the questionnaire definition for linkId "
                                     f"'{qi.get('linkId')}'")
    answers = [a for a in _list(item.get("answer")) if isinstance(a, dict)]
    if not answers and qi.get("required") and kind not in ("group", "display") and _enabled(r, qi):
        _missing(r, path, f"No response answer found for required item '{qi.get('linkId')}'")
    if len(answers) > 1 and not qi.get("repeats"):
        r.run.error("invalid", f"{path}.answer[1]", "Only one answer is allowed for this item (it does not repeat)")
    for a, answer in enumerate(answers):
        where = f"{path}.answer[{a}]"
        if kind == "group":
            r.run.error("structure", where, "Items of type group should not have answers")
            continue
        _answer(r, qi, answer, where)
        if kind != "display":
            _level(r, _items(qi), answer, where)
    if item.get("item"):
        if kind == "display":
            r.run.error("structure", path, f"Items of type display should not have items (linkId "
                                           f"'{qi.get('linkId')}')")
        elif kind != "group":
            r.run.error("structure", path, f"Items not of type group should not have items outside answers "
                                           f"(use answer.item; linkId '{qi.get('linkId')}')")
        else:
            _level(r, _items(qi), item, path)


def _answer(r: _Response, qi: dict, answer: dict, path: str) -> None:
    kind = qi.get("type")
    allowed = ANSWER_TYPES.get(kind)
    key = next((k for k in answer if k.startswith("value") and len(k) > 5), None)
    if allowed is None or key is None:
        return
    vtype = key[5:]
    match = next((t for t in allowed if t[:1].upper() + t[1:] == vtype), None)
    if match is None:
        r.run.error("structure", f"{path}.{key}", f"Answer value must be of the type {' or '.join(allowed)} "
                                                  f"(item '{qi.get('linkId')}', type {kind})")
        return
    if kind not in ("choice", "open-choice"):
        return
    value = answer[key]
    if match == "Coding":
        _coding_answer(r, qi, value, f"{path}.{key}")
        return
    options = [o.get(key) for o in _list(qi.get("answerOption")) if isinstance(o, dict) and key in o]
    if kind == "open-choice" and match == "string":
        return  # free text is what an open choice allows
    if not _list(qi.get("answerOption")):
        return
    if not options:
        r.run.error("structure", f"{path}.{key}", f"Option list has no option values of type {match}")
    elif value not in options:
        r.run.error("structure", f"{path}.{key}", f"The {match} {value!r} is not a valid option")


def _coding_answer(r: _Response, qi: dict, coding, path: str) -> None:
    if not isinstance(coding, dict):
        return
    system, code = coding.get("system"), coding.get("code")
    options = [o.get("valueCoding") for o in _list(qi.get("answerOption"))
               if isinstance(o, dict) and isinstance(o.get("valueCoding"), dict)]
    if options:
        if not any(o.get("system") == system and o.get("code") == code for o in options):
            r.run.error("structure", path, f"The code {system}::{code} is not a valid option")
        return
    if qi.get("answerOption"):
        if qi.get("type") != "open-choice":
            r.run.error("structure", path, "Option list has no option values of type coding")
        return
    ref = qi.get("answerValueSet")
    if not isinstance(ref, str) or code is None:
        return
    codes = _answer_codes(r, ref)
    if codes is None:
        r.run.add("warning", "code-invalid", path, f"The value set '{ref}' could not be found or expanded, so the "
                                                   f"answer was not checked against it")
    elif (system, code) not in codes and not (system is None and code in {c for _, c in codes}):
        r.run.error("code-invalid", path, f"The code {system}::{code} was not found in the options value set "
                                          f"'{ref}' of the questionnaire")


def _answer_codes(r: _Response, ref: str):
    if not ref.startswith("#"):
        return r.run.v._value_sets(ref)
    contained = _list(r.container.get("contained"))
    vs = next((c for c in contained if isinstance(c, dict)
               and c.get("resourceType") == "ValueSet" and c.get("id") == ref[1:]), None)
    return r.run.v.expand_resource(vs, contained) if vs is not None else None


# ------------------------------------------------------------------------------ enableWhen


def _enabled(r: _Response, qi: dict) -> bool:
    conditions = [c for c in _list(qi.get("enableWhen")) if isinstance(c, dict)]
    if not conditions:
        return True
    results = [_condition(r, c) for c in conditions]
    return any(results) if qi.get("enableBehavior") == "any" else all(results)


def _condition(r: _Response, cond: dict) -> bool:
    answers = _answers_to(r.qr, cond.get("question"))
    op = cond.get("operator")
    key = next((k for k in cond if k.startswith("answer") and len(k) > 6), None)
    want = cond.get(key) if key else None
    if op == "exists":
        return bool(answers) == (want is True)
    values = [a.get("value" + key[6:]) for a in answers if key and "value" + key[6:] in a]
    return any(_compare(op, v, want) for v in values)


def _compare(op: str, got, want) -> bool:
    if isinstance(got, dict) or isinstance(want, dict):
        if not (isinstance(got, dict) and isinstance(want, dict)):
            return False
        if "value" in want or "value" in got:  # Quantity
            got, want = got.get("value"), want.get("value")
        else:  # Coding
            same = got.get("system") == want.get("system") and got.get("code") == want.get("code")
            return same if op == "=" else not same if op == "!=" else False
    if op == "=":
        return got == want
    if op == "!=":
        return got != want
    try:
        return {">": got > want, "<": got < want, ">=": got >= want, "<=": got <= want}.get(op, False)
    except TypeError:
        return False


def _answers_to(holder, link) -> list[dict]:
    out: list[dict] = []
    for item in _items(holder):
        answers = [a for a in _list(item.get("answer")) if isinstance(a, dict)]
        if item.get("linkId") == link:
            out.extend(answers)
        out.extend(_answers_to(item, link))
        for a in answers:
            out.extend(_answers_to(a, link))
    return out
