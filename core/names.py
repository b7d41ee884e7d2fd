"""One rule for every name a user gives (dataset, split, run, sweep, table, study), and one for tags.

Names become folder and file names, so they are checked before anything touches the file
system: letters, digits, '.', '_' and '-', starting with a letter or digit, at most 64
characters (well under any file system's limit, with room for suffixes such as
`.analysis`). Tags are free text a researcher types ("label wrong"): at most 64 printable
characters, no comma (a run's settings list tags separated by commas), no line break.
"""

from __future__ import annotations

import re

from core.errors import LabError

MAX_LENGTH = 64
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class NameError_(LabError):
    """A user-given name breaks the rule."""


def check_name(name: str, kind: str = "name") -> str:
    """`name` if it follows the rule; otherwise an error that states the rule and what was wrong."""
    rule = f"letters, digits, '.', '_' and '-', starting with a letter or digit, at most {MAX_LENGTH} characters"
    if not isinstance(name, str) or not name:
        raise NameError_(f"the {kind} needs a name: {rule}")
    if len(name) > MAX_LENGTH:
        raise NameError_(f"{kind} name {name[:20]!r}… is {len(name)} characters long; at most {MAX_LENGTH} ({rule})")
    if not _NAME.match(name) or ".." in name:
        bad = sorted({c for c in name if not (c.isascii() and (c.isalnum() or c in "._-"))})
        why = f" (it contains {''.join(bad)!r})" if bad else ""
        raise NameError_(f"invalid {kind} name {name!r}{why}: use {rule}")
    return name


def check_tag(tag: str) -> str:
    """The tag, stripped, if it follows the tag rule."""
    tag = (tag or "").strip()
    if not tag:
        raise NameError_("a tag needs some text, e.g. 'label wrong'")
    if len(tag) > MAX_LENGTH:
        raise NameError_(f"tag {tag[:20]!r}… is {len(tag)} characters long; at most {MAX_LENGTH}")
    if "," in tag:  # a run's config lists the tags it leaves out separated by commas
        raise NameError_(f"tag {tag!r}: a tag cannot contain ','")
    if any(not c.isprintable() for c in tag):
        raise NameError_(f"tag {tag!r}: a tag is one line of printable text")
    return tag
