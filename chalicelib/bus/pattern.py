"""EventBridge event-pattern matching for the local event bus.

The local bus must route an event to exactly the `@app.on_cw_event(pattern)` handlers that
EventBridge would invoke, or the laptop and AWS disagree about which code runs. EventBridge
matches with AWS's event-ruler, so this module follows event-ruler's model rather than a
naive recursive comparison:

* Both the pattern and the event are flattened to dotted paths (``detail.Twitter.UserId``).
  Arrays are "crushed out": a pattern ``{"Images": {"Key": [...]}}`` matches an event
  whose ``Images`` is an array of objects, provided every field one rule matches inside an
  array comes from the same element (event-ruler's "array consistency").
* A field exists only if a leaf value (string, number, boolean or null) sits at its path, so
  ``[]``, ``{}`` and intermediate objects count as absent for ``exists``.
* Strings, numbers, booleans and null are distinct: ``1`` never matches ``true``, ``"5"``
  never matches ``5``. Numbers compare as event-ruler does, to six decimal places within
  +/-5e9; outside that range only identical values of the same JSON type are equal and
  ``numeric`` does not match.
* ``anything-but`` only rejects values of its own type (a string list never rejects a
  number) and never matches a missing field.
* ``$or`` expands into alternative sub-rules; each must match on its own.
* ``exists: false`` inside an array of objects is judged against the array elements that
  the rule's earlier paths (in sorted order, as event-ruler walks them) have already bound;
  if none has, the field must be absent from every element.

Known simplifications: event-ruler treats the dotted key ``"a.b"`` and the nesting
``{"a": {"b": ...}}`` alike (it documents this as unreliable); so does this module. Case
folding uses Python's ``str.lower``. Pure standard library: it runs inside Lambda packages.
"""

from __future__ import annotations

import ipaddress
import itertools
import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from chalicelib.errors import InputError

__all__ = [
    "CompiledPattern",
    "InvalidPatternError",
    "compile_pattern",
    "matches",
    "validate_pattern",
]

Scalar = str | int | float | bool | None
Predicate = Callable[[Scalar], bool]
Membership = Mapping[int, int]

_OR = "$or"
_NUMBER_LIMIT = 5e9  # event-ruler's ComparableNumber range, inclusive
_IPV4_SHAPE = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+")
_IPV6_SHAPE = re.compile(r"[0-9a-fA-F:]*:[0-9a-fA-F:]*")
_OPERATORS = (
    "prefix",
    "suffix",
    "equals-ignore-case",
    "wildcard",
    "anything-but",
    "exists",
    "numeric",
    "cidr",
)
# Field names event-ruler refuses inside "$or" so that an operator object is never
# mistaken for a nested field (RESERVED_FIELD_NAMES_IN_OR_RELATIONSHIP).
_RESERVED_IN_OR = frozenset(
    (
        *_OPERATORS,
        "exactly",
        "=",
        "<",
        "<=",
        ">",
        ">=",
        "regex",
        "not-wildcard",
        "not-equals-ignore-case",
        "date-after",
        "date-on-or-after",
        "date-before",
        "date-on-or-before",
        "in-date-range",
        "ip-address-in-range",
        "ip-address-not-in-range",
    )
)


class InvalidPatternError(InputError):
    """The pattern is not one EventBridge would accept; the message names the path and why."""


# --------------------------------------------------------------------------- public API


@dataclass(frozen=True)
class _Leaf:
    """The conditions on one path: OR of value predicates, plus `exists: false`."""

    predicates: tuple[Predicate, ...]
    allow_absent: bool

    def accepts(self, value: Scalar) -> bool:
        """True if any value predicate accepts this event value."""
        return any(predicate(value) for predicate in self.predicates)


_Rule = tuple[tuple[str, _Leaf], ...]


@dataclass(frozen=True)
class CompiledPattern:
    """A validated pattern, ready to test many events without re-parsing it."""

    rules: tuple[_Rule, ...]

    def matches(self, event: Mapping[str, Any]) -> bool:
        """True if the event matches any of the pattern's `$or` alternatives."""
        if not isinstance(event, Mapping):
            raise TypeError(f"an event must be a JSON object, not {type(event).__name__}")
        fields = _flatten_event(event)
        return any(_rule_matches(rule, 0, fields, {}) for rule in self.rules)


def compile_pattern(pattern: dict) -> CompiledPattern:
    """Validate and compile a pattern once, e.g. when a handler is registered on the bus."""
    if not isinstance(pattern, Mapping):
        raise InvalidPatternError(f"an event pattern must be a JSON object, not {_kind(pattern)}")
    rules = _compile_object(pattern, (), in_or=False)
    return CompiledPattern(tuple(tuple(sorted(rule.items())) for rule in rules))


def validate_pattern(pattern: dict) -> None:
    """Raise InvalidPatternError if EventBridge would reject the pattern."""
    compile_pattern(pattern)


def matches(pattern: dict, event: dict) -> bool:
    """True if EventBridge would deliver `event` to a rule with `pattern`.

    Validates the pattern first, so a malformed pattern raises instead of silently never
    matching.
    """
    return compile_pattern(pattern).matches(event)


# --------------------------------------------------------------------------- event side


@dataclass(frozen=True, eq=False)
class _Field:
    """One leaf value of the event and the array elements (array id -> index) holding it."""

    value: Scalar
    membership: Membership


def _flatten_event(event: Mapping[str, Any]) -> dict[str, list[_Field]]:
    """Map each dotted path to its leaf values, as event-ruler flattens an event."""
    fields: dict[str, list[_Field]] = {}
    _walk_object(event, (), {}, fields, itertools.count())
    return fields


def _walk_object(
    node: Mapping[str, Any],
    path: tuple[str, ...],
    membership: Membership,
    out: dict[str, list[_Field]],
    array_ids: Iterator[int],
) -> None:
    for key, value in node.items():
        if not isinstance(key, str):
            raise TypeError(f"event keys must be strings, got {key!r} at {_dotted(path)}")
        _walk_value(value, (*path, key), membership, out, array_ids)


def _walk_value(
    value: Any,
    path: tuple[str, ...],
    membership: Membership,
    out: dict[str, list[_Field]],
    array_ids: Iterator[int],
) -> None:
    if isinstance(value, Mapping):
        _walk_object(value, path, membership, out, array_ids)
    elif isinstance(value, list | tuple):
        _walk_array(value, path, membership, out, array_ids)
    elif value is None or isinstance(value, str | int | float):
        out.setdefault(".".join(path), []).append(_Field(value, membership))
    else:
        raise TypeError(f"{_dotted(path)}: {type(value).__name__} is not a JSON value")


def _walk_array(
    items: list | tuple,
    path: tuple[str, ...],
    membership: Membership,
    out: dict[str, list[_Field]],
    array_ids: Iterator[int],
) -> None:
    """Tag values inside object/array elements with their element index.

    Scalars directly in the array are left untagged, as in event-ruler: any of them may
    match alongside fields from any element.
    """
    array_id = next(array_ids)
    for index, item in enumerate(items):
        nested = isinstance(item, Mapping | list | tuple)
        item_membership = {**membership, array_id: index} if nested else membership
        _walk_value(item, path, item_membership, out, array_ids)


def _consistent(bound: Membership, candidate: Membership) -> bool:
    """False if the candidate sits in another element of an array the rule already uses."""
    return all(bound.get(array_id, index) == index for array_id, index in candidate.items())


def _rule_matches(
    rule: _Rule, position: int, fields: dict[str, list[_Field]], bound: Membership
) -> bool:
    """Backtracking search over the rule's paths, keeping array choices consistent."""
    if position == len(rule):
        return True
    path, leaf = rule[position]
    candidates = [f for f in fields.get(path, ()) if _consistent(bound, f.membership)]
    if leaf.allow_absent and not candidates and _rule_matches(rule, position + 1, fields, bound):
        return True
    tried: set[frozenset[tuple[int, int]]] = set()
    for field in candidates:
        merged = {**bound, **field.membership}
        signature = frozenset(merged.items())
        if signature in tried or not leaf.accepts(field.value):
            continue
        tried.add(signature)  # same array choices as a failed try: the rest would fail too
        if _rule_matches(rule, position + 1, fields, merged):
            return True
    return False


# --------------------------------------------------------------------------- pattern side


def _compile_object(
    node: Mapping[str, Any], path: tuple[str, ...], in_or: bool
) -> list[dict[str, _Leaf]]:
    """Compile a pattern object into alternative sub-rules (path -> leaf), expanding `$or`."""
    if not node:
        raise InvalidPatternError(f"{_dotted(path)}: empty objects are not allowed")
    rules: list[dict[str, _Leaf]] = [{}]
    for key, value in node.items():
        if not isinstance(key, str):
            raise InvalidPatternError(f"{_dotted(path)}: field names must be strings")
        if key == _OR:
            alternatives = _compile_or(value, path)
        else:
            if in_or and key in _RESERVED_IN_OR:
                raise InvalidPatternError(
                    f"{_dotted((*path, key))}: {key!r} is a reserved word and cannot be a "
                    "field name inside $or"
                )
            alternatives = _compile_member(value, (*path, key), in_or)
        rules = [_merge_rules(left, right) for left in rules for right in alternatives]
    return rules


def _compile_member(value: Any, path: tuple[str, ...], in_or: bool) -> list[dict[str, _Leaf]]:
    if isinstance(value, Mapping):
        return _compile_object(value, path, in_or)
    if isinstance(value, list):
        return [{".".join(path): _compile_leaf(value, path)}]
    raise InvalidPatternError(f"{_dotted(path)}: must be an object or an array, not {_kind(value)}")


def _compile_or(value: Any, path: tuple[str, ...]) -> list[dict[str, _Leaf]]:
    where = _dotted((*path, _OR))
    if not isinstance(value, list):
        raise InvalidPatternError(f"{where}: must be an array of objects")
    if len(value) < 2:
        raise InvalidPatternError(f"{where}: needs at least 2 objects")
    alternatives: list[dict[str, _Leaf]] = []
    for branch in value:
        if not isinstance(branch, Mapping):
            raise InvalidPatternError(f"{where}: only objects are allowed, not {_kind(branch)}")
        alternatives.extend(_compile_object(branch, path, in_or=True))
    return alternatives


def _merge_rules(left: dict[str, _Leaf], right: dict[str, _Leaf]) -> dict[str, _Leaf]:
    clash = left.keys() & right.keys()
    if clash:
        raise InvalidPatternError(f"{min(clash)}: the same path cannot be constrained twice")
    return {**left, **right}


def _compile_leaf(values: list, path: tuple[str, ...]) -> _Leaf:
    where = _dotted(path)
    if not values:
        raise InvalidPatternError(f"{where}: empty arrays are not allowed")
    predicates: list[Predicate] = []
    allow_absent = False
    for value in values:
        if isinstance(value, Mapping):
            predicate = _compile_operator(value, where)
            if predicate is None:
                allow_absent = True
            else:
                predicates.append(predicate)
        else:
            predicates.append(_exact(value, where))
    return _Leaf(tuple(predicates), allow_absent)


def _exact(value: Any, where: str) -> Predicate:
    """An exact-value condition; strings that are IP addresses compare as addresses."""
    if isinstance(value, bool) or value is None:
        return lambda v: v is value
    if isinstance(value, str):
        address = _ip(value)
        if address is not None:
            return lambda v: isinstance(v, str) and _ip(v) == address
        return lambda v: isinstance(v, str) and v == value
    if isinstance(value, int | float):
        return _number_equals(_finite(value, where))
    raise InvalidPatternError(
        f"{where}: match value must be a string, number, true, false, null or an operator "
        f"object, not {_kind(value)}"
    )


def _compile_operator(spec: Mapping[str, Any], where: str) -> Predicate | None:
    """One operator object, e.g. {"prefix": "x"}; None stands for `exists: false`."""
    if len(spec) != 1:
        reason = "match expression name not found" if not spec else "only one key allowed"
        raise InvalidPatternError(f"{where}: {reason} in match expression {spec!r}")
    ((name, operand),) = spec.items()
    builder = _OPERATOR_BUILDERS.get(name)
    if builder is None:
        raise InvalidPatternError(
            f"{where}: unrecognized match type {name!r}; expected one of {', '.join(_OPERATORS)}"
        )
    return builder(operand, where)


# --------------------------------------------------------------------------- operators


def _prefix(operand: Any, where: str) -> Predicate:
    if isinstance(operand, Mapping):
        text = _ignore_case_operand(operand, "prefix", where).lower()
        return lambda v: isinstance(v, str) and v.lower().startswith(text)
    text = _string(operand, "prefix", where)
    return lambda v: isinstance(v, str) and v.startswith(text)


def _suffix(operand: Any, where: str) -> Predicate:
    if isinstance(operand, Mapping):
        text = _ignore_case_operand(operand, "suffix", where).lower()
        return lambda v: isinstance(v, str) and v.lower().endswith(text)
    text = _string(operand, "suffix", where)
    return lambda v: isinstance(v, str) and v.endswith(text)


def _equals_ignore_case(operand: Any, where: str) -> Predicate:
    text = _string(operand, "equals-ignore-case", where).lower()
    return lambda v: isinstance(v, str) and v.lower() == text


def _wildcard(operand: Any, where: str) -> Predicate:
    regex = _wildcard_regex(_string(operand, "wildcard", where), where)
    return lambda v: isinstance(v, str) and regex.fullmatch(v) is not None


def _exists(operand: Any, where: str) -> Predicate | None:
    if not isinstance(operand, bool):
        raise InvalidPatternError(f"{where}: exists match pattern must be either true or false")
    return (lambda v: True) if operand else None


def _cidr(operand: Any, where: str) -> Predicate:
    network = _network(_string(operand, "cidr", where), where)

    def predicate(value: Scalar) -> bool:
        address = _ip(value) if isinstance(value, str) else None
        return address is not None and address in network

    return predicate


def _numeric(operand: Any, where: str) -> Predicate:
    """`numeric`: ["=", x], [op, x] or [">"|">=", low, "<"|"<=", high], as event-ruler accepts."""
    if not isinstance(operand, list) or not operand:
        raise InvalidPatternError(f"{where}: value of numeric must be a non-empty array")
    first = operand[0]
    if first == "=":
        key = _comparable_bound(operand, 1, where, last=True)
        return _range(key, False, key, False)
    if first in ("<", "<="):
        top = _comparable_bound(operand, 1, where, last=True)
        return _range(None, False, top, first == "<")
    if first not in (">", ">="):
        raise InvalidPatternError(f"{where}: unrecognized numeric range operator {first!r}")
    bottom = _comparable_bound(operand, 1, where, last=len(operand) <= 2)
    if len(operand) == 2:
        return _range(bottom, first == ">", None, False)
    closer = operand[2]
    if closer not in ("<", "<="):
        raise InvalidPatternError(f"{where}: bad numeric range operator {closer!r}")
    top = _comparable_bound(operand, 3, where, last=True)
    if bottom >= top:
        raise InvalidPatternError(f"{where}: numeric range bottom must be less than top")
    return _range(bottom, first == ">", top, closer == "<")


def _anything_but(operand: Any, where: str) -> Predicate:
    if isinstance(operand, Mapping):
        return _anything_but_nested(operand, where)
    if isinstance(operand, list):
        return _anything_but_values(operand, where)
    return _anything_but_values([operand], where)


def _anything_but_values(values: list, where: str) -> Predicate:
    """Exclude exact strings or numbers; a value of the other type is never excluded."""
    if not values:
        raise InvalidPatternError(f"{where}: anything-but list must not be empty")
    if all(isinstance(v, str) for v in values):
        excluded = frozenset(values)
        return lambda v: not (isinstance(v, str) and v in excluded)
    if all(_is_number(v) for v in values):
        keys = frozenset(_comparable(_finite(v, where), where) for v in values)
        return lambda v: _comparable_or_none(v) not in keys
    raise InvalidPatternError(
        f"{where}: anything-but takes a string, a number, or a list of only strings or only "
        f"numbers (no null, booleans or mixed types), got {values!r}"
    )


def _anything_but_nested(spec: Mapping[str, Any], where: str) -> Predicate:
    """anything-but {prefix|suffix|equals-ignore-case|wildcard: text or [texts]}."""
    if len(spec) != 1:
        raise InvalidPatternError(f"{where}: anything-but takes exactly one nested operator")
    ((name, operand),) = spec.items()
    texts = operand if isinstance(operand, list) else [operand]
    if not texts:
        raise InvalidPatternError(f"{where}: anything-but/{name} list must not be empty")
    texts = [_string(text, f"anything-but/{name}", where) for text in texts]
    if name in ("prefix", "suffix") and "" in texts:
        raise InvalidPatternError(f"{where}: anything-but/{name} must not be empty")
    hit = _anything_but_hit(name, texts, where)
    return lambda v: not (isinstance(v, str) and hit(v))


def _anything_but_hit(name: str, texts: list[str], where: str) -> Callable[[str], bool]:
    """What anything-but/<name> excludes, for string event values."""
    if name == "prefix":
        prefixes = tuple(texts)
        return lambda v: v.startswith(prefixes)
    if name == "suffix":
        suffixes = tuple(texts)
        return lambda v: v.endswith(suffixes)
    if name == "equals-ignore-case":
        lowered = frozenset(text.lower() for text in texts)
        return lambda v: v.lower() in lowered
    if name == "wildcard":
        regexes = tuple(_wildcard_regex(text, where) for text in texts)
        return lambda v: any(regex.fullmatch(v) for regex in regexes)
    raise InvalidPatternError(
        f"{where}: unsupported anything-but pattern {name!r}; "
        "expected prefix, suffix, equals-ignore-case or wildcard"
    )


_OPERATOR_BUILDERS: dict[str, Callable[[Any, str], Predicate | None]] = {
    "prefix": _prefix,
    "suffix": _suffix,
    "equals-ignore-case": _equals_ignore_case,
    "wildcard": _wildcard,
    "anything-but": _anything_but,
    "exists": _exists,
    "numeric": _numeric,
    "cidr": _cidr,
}


# --------------------------------------------------------------------------- helpers


def _is_number(value: Any) -> bool:
    """JSON numbers only: Python's bool is an int, EventBridge's true is not a number."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def _finite(value: int | float, where: str) -> int | float:
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidPatternError(f"{where}: {value!r} is not a JSON number")
    return value


def _comparable_or_none(value: Any) -> int | None:
    """event-ruler's ComparableNumber: six decimals, only within +/-5e9; else not numeric."""
    if not _is_number(value) or not -_NUMBER_LIMIT <= value <= _NUMBER_LIMIT:
        return None  # NaN fails the range test too
    return int(1e6 * (_NUMBER_LIMIT + value))


def _comparable(value: int | float, where: str) -> int:
    key = _comparable_or_none(value)
    if key is None:
        raise InvalidPatternError(
            f"{where}: {value!r} is outside the numeric range EventBridge supports "
            f"(-{_NUMBER_LIMIT:g} to {_NUMBER_LIMIT:g})"
        )
    return key


def _number_equals(number: int | float) -> Predicate:
    """Equal as numbers within the comparable range, else only the identical JSON value."""
    key = _comparable_or_none(number)

    def predicate(value: Scalar) -> bool:
        if not _is_number(value):
            return False
        if key is not None and _comparable_or_none(value) == key:
            return True
        return type(value) is type(number) and value == number

    return predicate


def _numeric_bound(operand: list, index: int, where: str, last: bool) -> int | float:
    """The number at operand[index], checking the expression's shape around it."""
    if index >= len(operand) or not _is_number(operand[index]):
        raise InvalidPatternError(f"{where}: value of {operand[index - 1]!r} must be numeric")
    if last and len(operand) > index + 1:
        raise InvalidPatternError(f"{where}: too many terms in numeric expression {operand!r}")
    return _finite(operand[index], where)


def _comparable_bound(operand: list, index: int, where: str, last: bool) -> int:
    return _comparable(_numeric_bound(operand, index, where, last), where)


def _range(low: int | None, open_low: bool, high: int | None, open_high: bool) -> Predicate:
    def predicate(value: Scalar) -> bool:
        key = _comparable_or_none(value)
        if key is None:
            return False
        if low is not None and (key <= low if open_low else key < low):
            return False
        return high is None or (key < high if open_high else key <= high)

    return predicate


def _string(value: Any, operator: str, where: str) -> str:
    if not isinstance(value, str):
        raise InvalidPatternError(f"{where}: {operator} match pattern must be a string")
    return value


def _ignore_case_operand(spec: Mapping[str, Any], operator: str, where: str) -> str:
    if list(spec) != ["equals-ignore-case"]:
        raise InvalidPatternError(
            f"{where}: {operator} takes a string or {{'equals-ignore-case': string}}, got {spec!r}"
        )
    return _string(spec["equals-ignore-case"], f"{operator}/equals-ignore-case", where)


def _wildcard_regex(text: str, where: str) -> re.Pattern[str]:
    """Translate a wildcard; `\\*` and `\\\\` escape, `**` and other escapes are rejected."""
    parts: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char == "*":
            if text[index + 1 : index + 2] == "*":
                raise InvalidPatternError(f"{where}: consecutive wildcard characters in {text!r}")
            parts.append(".*")
        elif char == "\\":
            escaped = text[index + 1 : index + 2]
            if escaped not in ("*", "\\"):
                raise InvalidPatternError(f"{where}: invalid escape character in {text!r}")
            parts.append(re.escape(escaped))
            index += 1
        else:
            parts.append(re.escape(char))
        index += 1
    return re.compile("".join(parts), re.DOTALL)


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a string spells, or None if it is not an IP literal (event-ruler's test)."""
    if not (_IPV4_SHAPE.fullmatch(text) or _IPV6_SHAPE.fullmatch(text)):
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None  # shaped like an address but not one: it stays a plain string


def _network(text: str, where: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """Parse a CIDR as event-ruler does: host bits are masked, /32 and /128 are refused."""
    address_text, slash, bits_text = text.partition("/")
    if not slash or "/" in bits_text:
        raise InvalidPatternError(f"{where}: malformed CIDR {text!r}, one '/' required")
    if not re.fullmatch(r"[+-]?[0-9]+", bits_text):
        raise InvalidPatternError(f"{where}: malformed CIDR {text!r}, mask bits must be an integer")
    address = _ip(address_text)
    if address is None:
        raise InvalidPatternError(f"{where}: invalid IP address in CIDR {text!r}")
    bits = int(bits_text)
    if not 0 <= bits < address.max_prefixlen:
        raise InvalidPatternError(
            f"{where}: IPv{address.version} mask bits must be 0 to {address.max_prefixlen - 1}"
        )
    return ipaddress.ip_network(f"{address}/{bits}", strict=False)


def _dotted(path: tuple[str, ...]) -> str:
    return ".".join(path) if path else "<pattern>"


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__
