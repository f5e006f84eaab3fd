#!/usr/bin/env python3
"""docs/AUTH-CRATE.md's dependency snippet, held to what works: it must be valid TOML (no key twice), depend on
`securecrud-auth` by a path that holds the crate (no URL that does not exist), ask only for features the crate
has, and list every other crate that the example service it points to (crates/auth/examples/
protected_service.rs, compiled in `make test`) uses. A service author who pastes it and the example gets a
project that resolves. Run by tests/docs/run.sh."""

import os
import re
import sys
import tomllib

root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
doc_path = os.path.join(root, "docs", "AUTH-CRATE.md")
example_path = os.path.join(root, "crates", "auth", "examples", "protected_service.rs")
crate_manifest = os.path.join(root, "crates", "auth", "Cargo.toml")

problems = []
doc = open(doc_path, encoding="utf-8").read()
section = doc.split("## Depending on it", 1)
if len(section) != 2:
    sys.exit("FAIL: docs/AUTH-CRATE.md has no section 'Depending on it'")
block = re.search(r"```toml\n(.*?)```", section[1], re.S)
if not block:
    sys.exit("FAIL: the section 'Depending on it' has no toml block")
try:
    manifest = tomllib.loads(block.group(1))
except tomllib.TOMLDecodeError as err:
    sys.exit(f"FAIL: the dependency snippet is not valid TOML: {err}")
deps = manifest.get("dependencies", {})

auth = deps.get("securecrud-auth")
if not isinstance(auth, dict) or "path" not in auth:
    problems.append("securecrud-auth must be a path dependency (it is not published anywhere)")
else:
    if "git" in auth:
        problems.append("securecrud-auth names a git URL")
    # The snippet's path is relative to a service beside the clone (`../securecrud/crates/auth`).
    if not auth["path"].endswith("crates/auth"):
        problems.append(f"the path {auth['path']!r} does not lead to crates/auth of a clone")
    available = tomllib.load(open(crate_manifest, "rb")).get("features", {})
    for feature in auth.get("features", []):
        if feature not in available:
            problems.append(f"securecrud-auth has no feature {feature!r}")

source = open(example_path, encoding="utf-8").read()
source = re.sub(r"//[^\n]*", "", source)
uses = re.findall(r"\buse\s+([^;]+);", source)
imported = set()
roots = set()
for statement in uses:
    roots.add(statement.strip().split("::")[0])
    imported.update(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", statement))
code = re.sub(r"\buse\s+[^;]+;", "", source)
for match in re.finditer(r"(?<![:\w])([a-z_][a-z0-9_]*)::", code):
    name = match.group(1)
    if name not in imported:
        roots.add(name)
needed = {name.replace("_", "-") for name in roots} - {"std", "core", "alloc", "self", "super", "crate"}
declared = {name.replace("_", "-") for name in deps}
for name in sorted(needed - declared):
    problems.append(f"the example uses the crate {name!r}, which the snippet does not declare")

if problems:
    print("FAIL: docs/AUTH-CRATE.md's dependency snippet:\n  - " + "\n  - ".join(problems), file=sys.stderr)
    sys.exit(1)
print(f"docs/AUTH-CRATE.md: the dependency snippet declares what the example uses ({', '.join(sorted(needed))})")
