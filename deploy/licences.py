"""Print the licence of every installed runtime dependency of gaitid, as a Markdown table.

``LICENSES.md`` embeds its output; regenerate it after changing dependencies::

    .venv/bin/python deploy/licences.py > /tmp/deps.md

The dependency set is the transitive closure of ``gaitid``'s own requirements (no extras), read
from the installed distributions' metadata; a licence is taken from ``License-Expression``, else
the ``License`` field when it is short, else the classifiers.
"""

import re
import sys
from importlib import metadata

from packaging.requirements import Requirement


def _licence(dist: metadata.Distribution) -> str:
    meta = dist.metadata
    expression = meta.get("License-Expression")
    if expression:
        return expression
    text = (meta.get("License") or "").strip()
    if text and len(text) <= 60 and "\n" not in text:
        return text
    classifiers = [c.split("::")[-1].strip() for c in meta.get_all("Classifier") or [] if c.startswith("License ::")]
    return ", ".join(classifiers) or "see the package"


def runtime_closure(root: str = "gaitid") -> dict[str, metadata.Distribution]:
    """Every distribution reachable from ``root``'s unconditional requirements."""
    seen: dict[str, metadata.Distribution] = {}
    pending = [root]
    while pending:
        name = re.sub(r"[-_.]+", "-", pending.pop()).lower()
        if name in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # an optional or platform-specific requirement not installed here
        seen[name] = dist
        for spec in dist.requires or []:
            requirement = Requirement(spec)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                pending.append(requirement.name)
    seen.pop(root, None)
    return dict(sorted(seen.items()))


def main() -> int:
    print("| package | version | licence |")
    print("|---|---|---|")
    for name, dist in runtime_closure().items():
        print(f"| {name} | {dist.version} | {_licence(dist)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
