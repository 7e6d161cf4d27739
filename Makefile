# cxledger — build, test and run. `make test` is what CI runs (via .ci/run).
GO          ?= go
BIN         := $(CURDIR)/bin
STATICCHECK := $(BIN)/staticcheck
STATICCHECK_VERSION := v0.7.0
GOTESTSUM   := $(BIN)/gotestsum
GOTESTSUM_VERSION := v1.13.0
# Redocly CLI lints the OpenAPI document; its version is locked in
# tools/openapi-lint/package-lock.json (npm ci installs exactly that).
OPENAPI_LINT_DIR := tools/openapi-lint
REDOCLY     := $(OPENAPI_LINT_DIR)/node_modules/.bin/redocly
FUZZTIME    ?= 5s
DATA        ?= ./cxledger-data

.PHONY: all build run test unit lint fmtcheck vet staticcheck layers openapi-lint fuzz tools check-go clean browser console-assets

all: build

check-go:
	@command -v $(GO) >/dev/null || { echo "make: Go is not installed (https://go.dev/dl)"; exit 1; }

build: check-go
	$(GO) build -o $(BIN)/cxledger ./cmd/cxledger

## run: builds and runs cxledger on the embedded store in $(DATA); ARGS picks
## the command (default: serve, the HTTP API).
ARGS ?= serve
run: build
	$(BIN)/cxledger $(ARGS) --data $(DATA)

tools: check-go $(STATICCHECK) $(GOTESTSUM)

$(STATICCHECK):
	GOBIN=$(BIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

$(GOTESTSUM):
	GOBIN=$(BIN) $(GO) install gotest.tools/gotestsum@$(GOTESTSUM_VERSION)

## test: everything CI checks — lint, the race-enabled test suite (PostgreSQL
## integration tests included; they fail under CI=true when the database is
## unreachable) and short fuzzing runs.
test: lint unit fuzz

## unit: the race-enabled tests; gotestsum lists every skipped test with its
## reason at the end (a skip is never a pass: e.g. the KurrentDB suite
## without a server says so there).
unit: check-go $(GOTESTSUM)
	$(GOTESTSUM) --format pkgname-and-test-fails --format-hide-empty-pkg -- -race -count=1 ./...

lint: fmtcheck vet staticcheck layers openapi-lint

fmtcheck: check-go
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet: check-go
	$(GO) vet ./...

staticcheck: tools
	$(STATICCHECK) ./...

layers: check-go
	$(GO) run ./cmd/layercheck

## openapi-lint: Redocly CLI's recommended rules (redocly.yaml) over
## adapters/httpapi/openapi.yaml; any error fails the build. Needs Node.js
## 20.19+ (or 22.12+) and npm.
openapi-lint: $(REDOCLY)
	REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true $(REDOCLY) lint --config redocly.yaml adapters/httpapi/openapi.yaml

$(REDOCLY): $(OPENAPI_LINT_DIR)/package.json $(OPENAPI_LINT_DIR)/package-lock.json
	@command -v npm >/dev/null || { echo "make: openapi-lint needs Node.js 20.19+ and npm (https://nodejs.org)"; exit 1; }
	cd $(OPENAPI_LINT_DIR) && npm ci --no-audit --no-fund
	@touch $@

## fuzz: runs every Fuzz target for FUZZTIME (default 5s) each.
fuzz: check-go
	@set -e; for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "fuzz: $$pkg $$f ($(FUZZTIME))"; \
			out=$$(mktemp); \
			if $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg >$$out 2>&1; then cat $$out; \
			elif grep -q 'context deadline exceeded' $$out && ! grep -q 'Failing input written' $$out; then \
				cat $$out; \
				echo "fuzz: $$f: Go 1.26's fuzzing coordinator failed at the -fuzztime deadline without a failing input (golang/go#75804, fixed in Go 1.27): running it once more"; \
				$(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
			else cat $$out; rm -f $$out; exit 1; fi; \
			rm -f $$out; \
		done; \
	done

## browser: installs Chromium for the web console's browser tests when
## /usr/bin/chromium is missing (Debian; CI runs it before `make test`).
browser:
	@if [ -x /usr/bin/chromium ]; then echo "browser: /usr/bin/chromium is installed"; \
	else apt-get update && apt-get install -y chromium; fi

## console-assets: fetches the web console's chart library at the version
## pinned in adapters/console/tools (package.json + package-lock.json) and
## vendors its minified build and licence. The result is committed: CI and
## builds need no npm.
CONSOLE_TOOLS  := adapters/console/tools
CONSOLE_VENDOR := adapters/console/assets/vendor
console-assets:
	cd $(CONSOLE_TOOLS) && npm ci --ignore-scripts --no-audit --no-fund
	cp $(CONSOLE_TOOLS)/node_modules/chart.js/dist/chart.umd.min.js $(CONSOLE_VENDOR)/chart.umd.min.js
	cp $(CONSOLE_TOOLS)/node_modules/chart.js/LICENSE.md $(CONSOLE_VENDOR)/chart.js.LICENSE.md

clean:
	rm -rf $(BIN) $(OPENAPI_LINT_DIR)/node_modules
