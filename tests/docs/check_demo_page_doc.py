#!/usr/bin/env python3
"""docs/GUIDE.md's browser code, held to the page that is tested: every `js` block of the sections "Passkeys"
and "Signing in with an OpenID Connect provider" must be lines of tests/browser/app/index.html, in the same
order (lines of the page in between are allowed), so that what a reader copies is what `make test-browser`
runs in Chromium (with a virtual authenticator; through the development provider's login page).
Run by tests/docs/run.sh."""

import os
import re
import sys

root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
guide = open(os.path.join(root, "docs", "GUIDE.md"), encoding="utf-8").read()
page = open(os.path.join(root, "tests", "browser", "app", "index.html"), encoding="utf-8").read()

SECTIONS = ["Passkeys", "Signing in with an OpenID Connect provider"]
blocks = []
for title in SECTIONS:
    section = guide.split(f"\n## {title}\n", 1)
    if len(section) != 2:
        sys.exit(f"FAIL: docs/GUIDE.md has no section '{title}'")
    found = re.findall(r"```js\n(.*?)```", section[1].split("\n## ", 1)[0], re.S)
    if not found:
        sys.exit(f"FAIL: the section '{title}' of docs/GUIDE.md shows no js code")
    blocks += found

page_lines = [line.rstrip() for line in page.splitlines()]
for block in blocks:
    at = 0
    for line in (line.rstrip() for line in block.splitlines()):
        if not line.strip():
            continue
        try:
            at = page_lines.index(line, at) + 1
        except ValueError:
            sys.exit(f"FAIL: docs/GUIDE.md shows a line the tested page does not have (in this order):\n{line}")
print(f"ok: {len(blocks)} code block(s) of docs/GUIDE.md are the tested page's code")
