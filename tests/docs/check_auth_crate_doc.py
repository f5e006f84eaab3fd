#!/usr/bin/env python3
"""docs/AUTH-CRATE.md's dependency snippets, held to what works: the section "Depending on it" has one toml block
per example service (actix-web: crates/auth/examples/protected_service.rs; axum: crates/auth/examples/
axum_service.rs, both compiled and run against a real api in `make test`), in that order. Each must be valid
TOML (no key twice), depend on `securecrud-auth` by a path that holds the crate (no URL that does not exist:
the crate is not published yet), ask only for features the crate has, and list every other crate its example
uses. A service author who pastes one and its example gets a project that resolves. Run by
tests/docs/run.sh."""

import os
import re
import sys
import tomllib

root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
doc_path = os.path.join(root, "docs", "AUTH-CRATE.md")
crate_manifest = os.path.join(root, "crates", "auth", "Cargo.toml")

problems = []
doc = open(doc_path, encoding="utf-8").read()
section = doc.split("## Depending on it", 1)
if len(section) != 2:
    sys.exit("FAIL: docs/AUTH-CRATE.md has no section 'Depending on it'")
section = section[1].split("\n## ", 1)[0]
blocks = re.findall(r"```toml\n(.*?)```", section, re.S)
examples = ["protected_service.rs", "axum_service.rs"]
if len(blocks) != len(examples):
    sys.exit(f"FAIL: the section 'Depending on it' has {len(blocks)} toml blocks, not one per example ({examples})")
available = tomllib.load(open(crate_manifest, "rb")).get("features", {})
checked = []
for block, example in zip(blocks, examples):
    try:
        manifest = tomllib.loads(block)
    except tomllib.TOMLDecodeError as err:
        sys.exit(f"FAIL: the snippet for {example} is not valid TOML: {err}")
    deps = manifest.get("dependencies", {})

    auth = deps.get("securecrud-auth")
    if not isinstance(auth, dict) or "path" not in auth:
        problems.append(f"{example}: securecrud-auth must be a path dependency (it is not published yet)")
    else:
        if "git" in auth:
            problems.append(f"{example}: securecrud-auth names a git URL")
        # The snippet's path is relative to a service beside the clone (`../securecrud/crates/auth`).
        if not auth["path"].endswith("crates/auth"):
            problems.append(f"{example}: the path {auth['path']!r} does not lead to crates/auth of a clone")
        for feature in auth.get("features", []):
            if feature not in available:
                problems.append(f"{example}: securecrud-auth has no feature {feature!r}")

    source = open(os.path.join(root, "crates", "auth", "examples", example), encoding="utf-8").read()
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
    # Attribute macros name their crate too (`#[tokio::main]`, `#[actix_web::main]`).
    roots.update(re.findall(r"#\[([a-z_][a-z0-9_]*)::", source))
    needed = {name.replace("_", "-") for name in roots} - {"std", "core", "alloc", "self", "super", "crate"}
    declared = {name.replace("_", "-") for name in deps}
    for name in sorted(needed - declared):
        problems.append(f"{example} uses the crate {name!r}, which its snippet does not declare")
    checked.append(f"{example}: {', '.join(sorted(needed))}")

if problems:
    print("FAIL: docs/AUTH-CRATE.md's dependency snippet:\n  - " + "\n  - ".join(problems), file=sys.stderr)
    sys.exit(1)
print("docs/AUTH-CRATE.md: each dependency snippet declares what its example uses (" + "; ".join(checked) + ")")
