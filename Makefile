# guestcatalog — see README.md. `make test` is what CI runs (.ci/run).
GO        ?= go
PKGS_LIB  := ./catalog/... ./cloudinit/... ./framework/... ./ci/... ./cmd/...
E2E       ?= debian-containerd debian-docker debian-podman debian-apptainer
# aarch64 guests on the x86_64 CI machines are a foreign arch (image built
# through qemu-user, guest translated by TCG). On an idle 2-core host the
# arm64 image build takes about 17 minutes and the verify about 5 more, so
# `make test` runs one aarch64 template, last, its image built in the
# background during the x86_64 tiers (.ci/e2e-all); more with
# make test-e2e-aarch64 E2E_AARCH64="debian-containerd debian-docker ...".
E2E_AARCH64 ?= debian-containerd
REPORTS   ?= out/reports
ARTIFACTS ?= out/artifacts

.PHONY: all build test test-e2e-all test-short test-integration test-e2e test-e2e-aarch64 test-suites lint bench generate deps verify help

all: lint test-short build

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

deps: ## install the Debian packages the tests and guests need (root; Debian/Ubuntu)
	./.ci/install-deps

build: ## build bin/catalog
	$(GO) build -o bin/catalog ./cmd/catalog

test: lint test-short test-integration test-e2e-all ## everything CI runs: unit, integration, offline e2e (TCG), one aarch64 template

test-e2e-all: ## tiers 3 as CI runs them: test-e2e and test-suites while the arm64 image builds, then test-e2e-aarch64
	GO=$(GO) MAKE=$(MAKE) ARTIFACTS=$(abspath $(ARTIFACTS)) E2E_AARCH64="$(E2E_AARCH64)" ./.ci/e2e-all

test-short: ## tier 1: hermetic unit tests, seconds
	$(GO) test -short ./...

test-integration: ## tier 2: real qemu-img, mmdebstrap, cloud-init schema, QEMU boots
	GUESTCATALOG_REQUIRE_TOOLS=1 $(GO) test -count=1 -timeout 40m $(PKGS_LIB)

test-e2e: ## tier 3: `catalog verify --offline` of the offline templates, and README's own-template example
	@# A debian-docker verify on a terminal (tmux), captured every 2 s into
	@# $(ARTIFACTS)/tty-recording: its status line must change at least every 10 s.
	@# Cold (boot, cloud-init, provisioning) on an empty cache, resumed when the
	@# cache already holds its saved guest (CI's cache persists between runs).
	GO=$(GO) ARTIFACTS=$(abspath $(ARTIFACTS)) ./.ci/record-verify-tty --offline --report-dir $(REPORTS)/tty --artifacts $(ARTIFACTS)/tty debian-docker
	@# The offline templates, piped: one plain line per event (checked, kept in the artifacts);
	@# each template's phases are a cold boot's or a resume's, as the cache has it.
	@mkdir -p $(ARTIFACTS)
	{ $(GO) run ./cmd/catalog verify --offline --report-dir $(REPORTS) --artifacts $(ARTIFACTS) $(E2E) 2>&1; echo $$? >$(ARTIFACTS)/verify-piped.rc; } | tee $(ARTIFACTS)/verify-piped.log
	@rc=$$(cat $(ARTIFACTS)/verify-piped.rc); [ "$$rc" = 0 ] || { echo "verify exited $$rc"; exit $$rc; }
	./.ci/check-piped-log $(ARTIFACTS)/verify-piped.log
	$(GO) run ./cmd/catalog verify --offline --report-dir $(REPORTS)/sandbox --artifacts $(ARTIFACTS)/sandbox debian-13-sandbox
	$(GO) run ./cmd/catalog verify --offline --suite isolation --report-dir $(REPORTS)/isolation --artifacts $(ARTIFACTS)/isolation debian-docker
	GO=$(GO) REPORTS=$(abspath $(REPORTS)) ARTIFACTS=$(abspath $(ARTIFACTS)) ./.ci/e2e-own-template
	GO=$(GO) REPORTS=$(abspath $(REPORTS)) ARTIFACTS=$(abspath $(ARTIFACTS)) ./.ci/e2e-artifacts

test-e2e-aarch64: ## tier 3: `catalog verify --offline --arch aarch64` of $(E2E_AARCH64) (emulated on x86_64)
	$(GO) run ./cmd/catalog verify --offline --arch aarch64 --report-dir $(REPORTS)/aarch64 --artifacts $(ARTIFACTS)/aarch64 $(E2E_AARCH64)

test-suites: ## tier 3: the same specs through `go test ./suites/...` (reuses provisioned disks)
	GUESTCATALOG_OFFLINE=1 GUESTCATALOG_TEMPLATES="$(E2E)" $(GO) test -count=1 -p 1 -timeout 60m ./suites/... -ginkgo.v -ginkgo.junit-report=junit-suites.xml

verify: ## verify one template end to end: make verify T=debian-containerd
	$(GO) run ./cmd/catalog verify --offline $(or $(T),debian-containerd)

lint: ## gofmt, go vet, actionlint on the nightly workflow
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool actionlint .github/workflows/*.yml

generate: ## regenerate the JSON schema, the nightly workflow and golden files
	$(GO) generate ./...

bench: ## benchmarks that print figures (downloads, cache hits, image build, boot, warm verify, run --rm warm)
	GUESTCATALOG_BENCH_BUILD=1 $(GO) test -run '^$$' -bench . -benchtime 1x -timeout 60m ./catalog/... ./framework/... ./suites/... ./cmd/...
