"""``If-Match`` as RFC 9110 (section 13.1.1) defines it, for the schedule routes.

A schedule's ETag is its ``version`` as a strong entity-tag (``"3"``). ``If-Match`` is
``*`` (any current schedule) or a comma-separated list of entity-tags, and holds when
any of them matches the schedule's ETag by *strong* comparison: a weak tag
(``W/"3"``) never matches, nor does a tag that is no version of ours. A bare number
(``3``, unquoted) is read as ``"3"``: a common slip, not worth a refusal.

``IfMatch.parse`` reads the header; ``IfMatch.version_for(current)`` says which version
a change must still find (the engine checks it in the same write), or raises
``PreconditionFailedError`` (412) naming why nothing matches.
"""

from __future__ import annotations

from dataclasses import dataclass

from tickwork.errors import PreconditionFailedError

#: Digits a version has at most (versions are 64-bit integers).
_VERSION_DIGITS = 18


@dataclass(frozen=True)
class IfMatch:
    """A parsed ``If-Match``: ``any`` for ``*``, else the versions its strong tags name;
    ``header`` is the value as sent and ``ignored`` says why some tags can match
    nothing (for the 412's message)."""

    header: str
    any: bool = False
    versions: frozenset[int] = frozenset()
    ignored: tuple[str, ...] = ()

    @classmethod
    def parse(cls, header: str | None) -> IfMatch | None:
        """None without the header; ``PreconditionFailedError`` when it is not ``*`` nor
        a list of entity-tags (a condition that cannot hold)."""
        if header is None:
            return None
        if header.strip(" \t") == "*":
            return cls(header, any=True)
        versions: set[int] = set()
        tags = _entity_tags(header)
        ignored: list[str] = [] if tags else ["it names no entity-tag"]
        for weak, tag in tags:
            if weak:
                ignored.append(
                    f'W/"{tag}" is a weak entity-tag, and If-Match compares strongly, so it '
                    f'never matches (send the ETag as given: "{tag}")'
                )
            elif tag.isascii() and tag.isdigit() and len(tag) <= _VERSION_DIGITS:
                versions.add(int(tag))
            else:
                ignored.append(f'"{tag}" is no ETag of a schedule (those are versions: "3")')
        return cls(header, versions=frozenset(versions), ignored=tuple(ignored))

    def version_for(self, schedule_id: str, current_version: int) -> int | None:
        """The version a change must find for the condition to hold (None: any, for
        ``*``), given the schedule's ``current_version``; else 412."""
        if self.any:
            return None
        if current_version in self.versions:
            return current_version
        why = "; ".join(self.ignored)
        # Only a tag naming a version says the schedule was read at another one.
        because = (
            "it changed since it was read" + (f" ({why})" if why else "") if self.versions else why
        )
        raise PreconditionFailedError(
            f"schedule {schedule_id!r} is at version {current_version} (ETag "
            f'"{current_version}"), which If-Match {self.header!r} does not match: {because}'
        )


def _entity_tags(header: str) -> list[tuple[bool, str]]:
    """(weak, opaque tag) of each element of the list; empty elements are skipped, as
    RFC 9110 (section 5.6.1) asks of a recipient."""
    found: list[tuple[bool, str]] = []
    pos, end = 0, len(header)
    while True:
        while pos < end and header[pos] in " \t,":
            pos += 1
        if pos >= end:
            return found
        weak = header.startswith("W/", pos)
        if weak:
            pos += 2
        if pos < end and header[pos] == '"':
            close = header.find('"', pos + 1)
            if close < 0:
                raise _malformed(header, "an entity-tag's closing quote is missing")
            found.append((weak, header[pos + 1 : close]))
            pos = close + 1
        else:
            comma = header.find(",", pos)
            bare = header[pos : end if comma < 0 else comma].strip(" \t")
            if weak or not (bare.isascii() and bare.isdigit()):
                raise _malformed(header, f'{bare!r} is not an entity-tag (quote it: "3")')
            found.append((False, bare))
            pos = end if comma < 0 else comma
        while pos < end and header[pos] in " \t":
            pos += 1
        if pos < end and header[pos] != ",":
            raise _malformed(header, "entity-tags must be separated by commas")


def _malformed(header: str, why: str) -> PreconditionFailedError:
    return PreconditionFailedError(
        f"If-Match {header!r} is neither * nor a list of entity-tags ({why}), so it can "
        f'match nothing: send the ETag of GET /schedules/{{id}}, such as "3"'
    )
