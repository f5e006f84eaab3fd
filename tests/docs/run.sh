#!/usr/bin/env bash
# The documents a newcomer follows, run as written (tests/docs/rundoc.py): README.md, docs/GUIDE.md and
# docs/CONFIGURATION.md, in that order, on a fresh copy of the repository with `.env.example` copied to
# `.env`, with the variables `.env.example` names removed from the environment (the file decides, as on a
# new machine). Each command's answer is compared with the one the text shows; the first difference fails.
#
# Where: with DOCTEST_IN_PLACE=1 (.ci/run, which runs on a fresh clone) in the repository itself, which must
# then hold none of what the documents create (.env, data/, mail/, secrets/), removed again afterwards;
# otherwise in a copy of the working tree's files (what a commit would hold) at target/doctest/securecrud,
# built into this repository's target/: the workspace's own crates are compiled for the copy's path once
# (a minute or two); the copy keeps the files' times, so later runs compile only what changed.
#
# Needs: curl, jq, oathtool (installed from Debian when missing), Node.js and npm (the guide runs a development
# OpenID Connect provider; .ci/run installs them), ports 8080 and 9400 free (the documents use them).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"

missing=()
for tool in curl jq oathtool; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "== installing ${missing[*]} (Debian)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

for port in 8080 8082 9400; do
  if curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$port/"; then
    echo "FAIL: something already answers on 127.0.0.1:$port, a port the documents use; stop it first" >&2
    exit 1
  fi
done

# What the documents create in the folder they run in.
created=(.env data mail secrets)
if [ "${DOCTEST_IN_PLACE:-0}" = 1 ]; then
  # Refused before anything is set to be cleaned up: a developer's .env, database or keys are never touched.
  for path in "${created[@]}"; do
    if [ -e "$path" ]; then
      echo "FAIL: DOCTEST_IN_PLACE=1 needs a fresh clone, and $path exists; run without it" >&2
      exit 1
    fi
  done
  workdir="$root"
else
  workdir="$root/target/doctest/securecrud"
  rm -rf "$workdir"
  mkdir -p "$workdir"
  # What a commit of the working tree would hold: tracked files and new ones that are not ignored (a file
  # deleted but not yet committed is left out). GNU cp (--parents).
  git ls-files -z --cached --others --exclude-standard \
    | while IFS= read -r -d '' file; do if [ -e "$file" ]; then printf '%s\0' "$file"; fi; done \
    | xargs -0 cp -p --parents -t "$workdir"
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
fi

logs="$(mktemp -d)"
cleanup() {
  status=$?
  # Only what this run created: in place, none of it existed before (checked above); the copy is ours.
  (cd "$workdir" && rm -rf "${created[@]}")
  if [ $status -ne 0 ]; then echo "(logs of the background commands: $logs)" >&2; else rm -rf "$logs"; fi
}
trap cleanup EXIT

cp "$workdir/.env.example" "$workdir/.env"
# A newcomer's environment: the settings come from .env alone.
for var in $(sed -nE 's/^#? ?([A-Z][A-Z0-9_]+)=.*/\1/p' .env.example | sort -u) TEST_DATABASE; do
  unset "$var"
done

python3 "$root/tests/docs/test_rundoc.py" 2>&1 | tail -1
python3 "$root/tests/docs/check_auth_crate_doc.py"
python3 "$root/tests/docs/check_demo_page_doc.py"
cd "$workdir"
python3 "$root/tests/docs/rundoc.py" --workdir "$workdir" --logs "$logs" \
  README.md docs/GUIDE.md docs/CONFIGURATION.md
echo "== the documents answer as written"
