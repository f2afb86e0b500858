"""HTTP trigger route templates, matched the way ASP.NET Core routing matches them.

Rules:
- A template is segments separated by "/". Literal text matches case-insensitively.
- `{name}` captures one segment (or part of one: `{file}.{ext}`); `{name?}` is optional and
  `{name=value}` has a default (both only as the last segment); `{*name}` / `{**name}` capture
  the rest of the path, possibly empty.
- Constraints `{id:int}`, `long`, `bool`, `guid`, `alpha`, `double`, `decimal`, `float` restrict
  what a parameter matches; other constraints (min, length, regex(...)) are accepted and not
  enforced.
- A trailing "/" in the request path is ignored; captured values are URL-decoded.
- When several templates match, the most specific wins, segment by segment: literal, then
  complex, then constrained parameter, parameter, optional, catch-all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import unquote

_TOKEN = re.compile(r"\{([^{}]+)\}")
_CONSTRAINTS = {
    "int": r"-?\d+",
    "long": r"-?\d+",
    "bool": r"(?i:true|false)",
    "guid": r"[0-9A-Fa-f]{8}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{12}",
    "alpha": r"[A-Za-z]+",
    "double": r"-?\d+(?:\.\d+)?",
    "decimal": r"-?\d+(?:\.\d+)?",
    "float": r"-?\d+(?:\.\d+)?",
}
_RANK_LITERAL, _RANK_COMPLEX, _RANK_CONSTRAINED, _RANK_PARAM, _RANK_OPTIONAL, _RANK_CATCH_ALL = range(1, 7)


class RouteError(ValueError):
    """A route template that cannot be parsed."""


@dataclass(frozen=True)
class _Param:
    name: str
    pattern: str
    optional: bool = False
    default: str | None = None
    catch_all: bool = False
    constrained: bool = False


@dataclass
class RouteTemplate:
    """A compiled route template."""

    template: str
    regex: re.Pattern[str]
    groups: dict[str, str] = field(default_factory=dict)  # regex group -> parameter name
    defaults: dict[str, str] = field(default_factory=dict)
    precedence: tuple[int, ...] = ()

    def match(self, path: str) -> dict[str, str] | None:
        """Route parameters when `path` (without the route prefix) matches, else None."""
        found = self.regex.fullmatch(path.strip("/"))
        if found is None:
            return None
        params = dict(self.defaults)
        for group, name in self.groups.items():
            value = found.group(group)
            if value is not None and value != "":
                params[name] = unquote(value)
        return params


def _parse_param(token: str) -> _Param:
    body = token.strip()
    catch_all = body.startswith("*")
    body = body.lstrip("*")
    default: str | None = None
    if "=" in body:
        body, default = body.split("=", 1)
    optional = body.endswith("?")
    body = body.rstrip("?")
    name, *constraints = body.split(":")
    if not name or not re.fullmatch(r"[A-Za-z_][\w-]*", name):
        raise RouteError(f"invalid route parameter {{{token}}}")
    pattern = ".*" if catch_all else "[^/]+?"
    constrained = False
    for constraint in constraints:
        kind = constraint.split("(", 1)[0].lower()
        if kind in _CONSTRAINTS and not catch_all:
            pattern = _CONSTRAINTS[kind]
            constrained = True
    return _Param(name, pattern, optional or default is not None, default, catch_all, constrained)


def compile_route(template: str) -> RouteTemplate:
    """Compile an HTTP trigger's `route` value."""
    segments = [s for s in template.strip().strip("/").split("/")]
    if segments == [""]:
        segments = []
    pieces: list[str] = []
    groups: dict[str, str] = {}
    defaults: dict[str, str] = {}
    precedence: list[int] = []
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        tokens = list(_TOKEN.finditer(segment))
        if not tokens:
            if "{" in segment or "}" in segment:
                raise RouteError(f"unbalanced braces in route {template!r}")
            pieces.append(("/" if pieces else "") + "(?i:" + re.escape(segment) + ")")
            precedence.append(_RANK_LITERAL)
            continue
        whole = len(tokens) == 1 and tokens[0].span() == (0, len(segment))
        regex_parts: list[str] = []
        cursor = 0
        rank = _RANK_COMPLEX
        for token in tokens:
            literal = segment[cursor : token.start()]
            if literal:
                regex_parts.append("(?i:" + re.escape(literal) + ")")
            param = _parse_param(token.group(1))
            if (param.optional or param.catch_all) and not (whole and last):
                raise RouteError(f"optional and catch-all parameters must be the whole last segment: {template!r}")
            group = f"p{len(groups)}"
            groups[group] = param.name
            if param.default is not None:
                defaults[param.name] = param.default
            regex_parts.append(f"(?P<{group}>{param.pattern})")
            if whole:
                if param.catch_all:
                    rank = _RANK_CATCH_ALL
                elif param.optional:
                    rank = _RANK_OPTIONAL
                else:
                    rank = _RANK_CONSTRAINED if param.constrained else _RANK_PARAM
            cursor = token.end()
        tail = segment[cursor:]
        if tail:
            regex_parts.append("(?i:" + re.escape(tail) + ")")
        body = "".join(regex_parts)
        separator = "/" if pieces else ""
        if rank in (_RANK_OPTIONAL, _RANK_CATCH_ALL):
            pieces.append(f"(?:{separator}{body})?")
        else:
            pieces.append(separator + body)
        precedence.append(rank)
    return RouteTemplate(template, re.compile("".join(pieces)), groups, defaults, tuple(precedence))
