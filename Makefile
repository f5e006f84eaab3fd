# SecureCRUD developer commands. `make run` and `make test` are all a fresh clone needs.
CARGO ?= cargo

.PHONY: run bench-auth test test-auth-crate test-deps test-postgres test-docs test-browser test-contract test-client test-nginx test-deploy test-image bench seed fmt lint migrate ci clean-db

## Build and serve the api on 127.0.0.1:8080 with SQLite (data/securecrud.db, created and migrated at start).
run:
	$(CARGO) run --bin api

## Unit tests and black-box tests on SQLite; the black-box tests on PostgreSQL too when TEST_POSTGRES_URL is set.
## The mail tests run a real SMTP server (aiosmtpd, from PyPI) and the standards tests real OAuth 2.0 / JOSE
## client libraries (requests-oauthlib, PyJWT), installed here when missing.
## Built once. The tests that measure time (a logout refused within a second, a stream cut in time:
## TIMED_TESTS) run first, alone, on each engine, so that nothing else on the machine makes them late; then
## the rest on both engines at once (their output follows SQLite's): they mostly wait (on bcrypt, the
## database, the network), so more run at once than there are cores (6 per engine keeps PostgreSQL well
## under its 100 connections). With QUIET_DONE set (.ci/run), that file is made when the timed tests are over.
export RUST_TEST_THREADS ?= 6
TIMED_TESTS = within_a_second readers_that_never_read
SKIP_TIMED = $(foreach test,$(TIMED_TESTS),--skip $(test))
test: test-deps
	$(CARGO) test --workspace --no-run --quiet
	$(CARGO) test --workspace --test api --test feed_readers -- $(TIMED_TESTS)
	@if [ -n "$$TEST_POSTGRES_URL" ]; then \
		TEST_DATABASE=postgres $(CARGO) test --workspace --test api --test feed_readers -- $(TIMED_TESTS); \
	fi
	@if [ -n "$$QUIET_DONE" ]; then touch "$$QUIET_DONE"; fi
	@if [ -n "$$TEST_POSTGRES_URL" ]; then \
		log=$$(mktemp); \
		$(MAKE) --no-print-directory test-postgres TEST_ARGS="$(SKIP_TIMED)" > "$$log" 2>&1 & postgres=$$!; \
		$(CARGO) test --workspace -- $(SKIP_TIMED); sqlite=$$?; \
		wait $$postgres; pg=$$?; \
		echo "== the black-box tests on PostgreSQL (they ran beside the above)"; \
		cat "$$log"; rm -f "$$log"; \
		if [ $$sqlite -ne 0 ] || [ $$pg -ne 0 ]; then echo "FAIL: SQLite $$sqlite, PostgreSQL $$pg"; exit 1; fi; \
	else \
		$(CARGO) test --workspace -- $(SKIP_TIMED) && \
		echo "NOTE: PostgreSQL tests skipped: TEST_POSTGRES_URL is not set (e.g. postgres://postgres@127.0.0.1:5432/postgres)."; \
	fi

## The auth crate as its users get it: packaged and built alone (`cargo publish --dry-run`: no path into the rest
## of the repository, no file missing), and its documentation with every warning an error (a broken link, an
## undocumented item). Its features together are linted by the workspace's clippy run, its doctests run in
## `make test`; `cargo clippy -p securecrud-auth --features actix,axum` lints the frameworks without `jwks`
## (not run here: it checks most of the dependencies again with other features, minutes on 2 cores).
test-auth-crate:
	$(CARGO) publish --dry-run --locked -p securecrud-auth $(PUBLISH_FLAGS)
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --locked --no-deps -p securecrud-auth --all-features

## What the tests need beyond cargo: python3 with aiosmtpd (the SMTP server of the mail tests), and the
## third-party OAuth 2.0 / JOSE clients the standards tests drive (requests-oauthlib, PyJWT with cryptography).
PYTHON_TEST_PACKAGES = aiosmtpd 'requests-oauthlib>=2,<3' 'PyJWT[crypto]>=2.8,<3'
test-deps:
	@python3 -c 'import aiosmtpd, requests_oauthlib, jwt, cryptography' 2>/dev/null || \
		python3 -m pip install --quiet --disable-pip-version-check $(PYTHON_TEST_PACKAGES)

## The black-box tests against PostgreSQL (each test creates and drops its own database on that server).
## `--workspace` (with `--test` picking the targets) resolves features as `cargo test --workspace` does, so the
## binaries built by `make test` are reused instead of built again with another feature set (minutes on 2 cores).
test-postgres: test-deps
	@test -n "$$TEST_POSTGRES_URL" || { echo "TEST_POSTGRES_URL is not set"; exit 1; }
	TEST_DATABASE=postgres $(CARGO) test --workspace --test api -- $(TEST_ARGS)
	TEST_DATABASE=postgres $(CARGO) test --workspace --test create_admin --test audit_prune --test keys --test shutdown --test feed_readers --test seed -- $(TEST_ARGS)

## The documents a newcomer follows (README.md, docs/GUIDE.md, docs/CONFIGURATION.md) run as written on a
## fresh copy with .env.example as .env, each answer compared with the text; needs port 8080. See tests/docs/.
test-docs:
	tests/docs/run.sh

## The real-browser tests: /docs, a cookie-session page, passkeys with Chromium's virtual authenticator, and a
## sign-in through an OpenID Connect provider's pages (panva's oidc-provider; needs /usr/bin/chromium and node;
## .ci/run installs them).
test-browser:
	cd tests/browser && npm ci --no-audit --no-fund --silent
	tests/browser/run.sh

## The OpenAPI document against the server: schemathesis (PyPI, installed when missing) with every check,
## for CONTRACT_MAX_TIME seconds (default 90), on a fresh api; fails on any failure. See tests/contract/.
test-contract:
	tests/contract/run.sh

## A TypeScript client generated from the live document (openapi-typescript + openapi-fetch), type-checked
## with tsc and run against a fresh api (needs node and npm). See tests/client/.
test-client:
	tests/client/run.sh

## nginx forward auth (auth_request → /api/v1/auth/check) with deploy/nginx/forward-auth.conf in front of a
## tiny upstream; installs Debian's nginx when missing. See tests/nginx/run.sh.
test-nginx:
	tests/nginx/run.sh

## The deployment test: nginx (deploy/nginx/securecrud.conf, TLS) in front of two api instances on one
## PostgreSQL database (TEST_POSTGRES_URL): client IPs, lockout and logout across instances, a rolling restart
## under load, and a database outage (it stops and restarts PostgreSQL: run it alone). See tests/deploy/.
test-deploy:
	tests/deploy/run.sh

## The container image (Containerfile): its runtime stage built with podman on a debootstrap base and run from
## its filesystem as uid 10001 against the local PostgreSQL (root; installs podman and debootstrap when missing).
## API_BIN=target/debug/api skips the release build. See tests/image/run.sh.
test-image:
	tests/image/run.sh

## Load-test the api (release build, wrk) and write docs/BENCHMARKS.md; see bench/run.sh.
bench:
	bash bench/run.sh

## What verifying a token costs in the auth crate, per core, next to the bare signature check (criterion;
## HS256, EdDSA, ES256, with and without a revocation deny-set of 100,000 sessions). See crates/auth/benches.
bench-auth:
	$(CARGO) bench -p securecrud-auth --features jwks --bench verify

## Fill the configured database with demo data (10 users, one the admin `admin`, and 100 tasks).
seed:
	$(CARGO) run --bin seed

fmt:
	$(CARGO) fmt --all

## What CI checks besides the tests.
lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --all-targets -- -D warnings
	python3 tests/deps/unused.py

## Apply pending migrations to DATABASE_URL without serving.
migrate:
	$(CARGO) run --bin api -- migrate up

## Everything CI runs (starts PostgreSQL if needed).
ci:
	bash .ci/run

## Delete the development SQLite database.
clean-db:
	rm -f data/securecrud.db data/securecrud.db-wal data/securecrud.db-shm
