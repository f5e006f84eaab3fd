#!/usr/bin/env python3
"""Fails on a dependency that a workspace crate declares and never names in its code, or that the workspace
declares and no member uses.

For each member's Cargo.toml: every key of [dependencies], [dev-dependencies] and [build-dependencies], plain or
under a [target.'cfg(…)'] (its library name: `package = "…"` renames, `-` becomes `_`) must appear as a word in that crate's Rust files
(`src/`, `tests/`, `benches/`, `examples/`, `build.rs`, or the paths its [[bin]]/[[test]] targets name).
Modules included from outside the crate with `#[path = "…"]` count as its code. A dependency kept for another reason (only its features, a macro's expansion) is listed in the crate's
`[package.metadata.unused-dependencies] keep = ["name"]` with the reason beside it.

    python3 tests/deps/unused.py        # run by make lint
"""
import pathlib, re, sys, tomllib

ROOT = pathlib.Path(__file__).resolve().parents[2]


def members():
    workspace = tomllib.loads((ROOT / "Cargo.toml").read_text())["workspace"]["members"]
    for pattern in workspace:
        for path in sorted(ROOT.glob(pattern)):
            if (path / "Cargo.toml").exists():
                yield path


def rust_files(crate, manifest):
    folders = [crate / name for name in ("src", "tests", "benches", "examples")]
    files = [crate / "build.rs"]
    for kind in ("bin", "test", "bench", "example"):
        for target in manifest.get(kind, []):
            if "path" in target:
                path = crate / target["path"]
                folders.append(path.parent)
    found = [file for folder in folders if folder.is_dir() for file in folder.rglob("*.rs")]
    found += [file for file in files if file.exists()]
    seen = set()
    while found:
        file = found.pop().resolve()
        if file in seen:
            continue
        seen.add(file)
        yield file
        # A module kept outside the crate (`#[path = "…"]`) is the crate's code too.
        for path in re.findall(r'#\[path\s*=\s*"([^"]+)"\]', file.read_text(errors="replace")):
            if (file.parent / path).exists():
                found.append(file.parent / path)


def dependency_tables(manifest):
    """Each dependency table of a manifest as (label, table): the plain ones and each target's
    (`[target.'cfg(…)'.dependencies]`)."""
    for table in ("dependencies", "dev-dependencies", "build-dependencies"):
        yield table, manifest.get(table, {})
        for target, tables in manifest.get("target", {}).items():
            yield f"target.{target}.{table}", tables.get(table, {})


def main():
    unused = []
    for crate in members():
        manifest = tomllib.loads((crate / "Cargo.toml").read_text())
        keep = set(manifest.get("package", {}).get("metadata", {}).get("unused-dependencies", {}).get("keep", []))
        code = "\n".join(file.read_text(errors="replace") for file in rust_files(crate, manifest))
        for table, dependencies in dependency_tables(manifest):
            for name, spec in dependencies.items():
                if name in keep:
                    continue
                # The name code uses is the key (a `package = "…"` rename included), with `_` for `-`.
                library = name.replace("-", "_")
                if not re.search(rf"\b{re.escape(library)}\b", code):
                    unused.append(f"{crate.relative_to(ROOT)}/Cargo.toml: [{table}] {name} is never named in the crate's code")
    workspace = tomllib.loads((ROOT / "Cargo.toml").read_text())["workspace"].get("dependencies", {})
    declared = set()
    for crate in members():
        manifest = tomllib.loads((crate / "Cargo.toml").read_text())
        for _, dependencies in dependency_tables(manifest):
            declared |= set(dependencies)
    unused += [f"Cargo.toml: [workspace.dependencies] {name} is used by no member" for name in workspace
               if name not in declared]
    if unused:
        print("\n".join(unused))
        print(f"{len(unused)} unused dependencies (remove them, or list one under "
              "[package.metadata.unused-dependencies] keep with the reason)")
        sys.exit(1)
    print("no unused dependencies")


if __name__ == "__main__":
    main()
