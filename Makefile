# Thin front of the CMake build. `make run` and `make test` install what they need first.
BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
JOBS       ?= $(shell nproc)
CC         ?= cc
FUZZ_SECONDS ?= 60
HOST ?= 0.0.0.0
PORT ?= 3000
PREFIX ?= /usr/local
PACKAGE_BUILD ?= build-package

.PHONY: all deps run test test-fast asan bench fuzz soak storm valgrind clean install package

all: $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null

deps:
	@scripts/deps

run: deps all
	$(BUILD)/wsio --host $(HOST) --port $(PORT)

# Every test, then the unit and interop tests again under ASan+UBSan.
test: deps all
	cd $(BUILD) && ctest --output-on-failure -j 2
	$(MAKE) asan

test-fast: all
	cd $(BUILD) && ctest --output-on-failure -j 2

asan:
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang -DWSIO_SANITIZE=ON >/dev/null
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		ctest --output-on-failure -j 2 -L 'unit|interop'

bench: deps all
	bench/run.sh $(BUILD)

# The long soak (tests/reliability/soak.py): SOAK_SECONDS of mixed traffic with churn; CI runs 120 s of it.
SOAK_SECONDS ?= 1800
soak: deps all
	/usr/bin/python3 tests/reliability/soak.py $(BUILD)/wsio --seconds $(SOAK_SECONDS) --json $(BUILD)/soak.json

# A reconnect storm of STORM_CLIENTS Socket.IO clients (tests/reliability/storm.py); CI runs 2,000.
STORM_CLIENTS ?= 10000
storm: deps all
	/usr/bin/python3 tests/reliability/storm.py $(BUILD)/wsio $(BUILD)/bench/loadgen --clients $(STORM_CLIENTS) --json $(BUILD)/storm.json

# The interop suites with their servers under valgrind memcheck (tests/reliability/valgrind.sh).
VALGRIND_BUILD ?= build-valgrind
valgrind: deps
	tests/reliability/valgrind.sh $(VALGRIND_BUILD)

fuzz: deps
	cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang -DWSIO_FUZZ=ON -DWSIO_TESTS=OFF >/dev/null
	cmake --build $(FUZZ_BUILD) -j $(JOBS)
	scripts/fuzz $(FUZZ_BUILD) $(FUZZ_SECONDS)

# Installs into PREFIX, staged under DESTDIR when set. The prefix is compiled into the program and written
# into the unit, so the build is configured with it first.
install: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=$(PREFIX) >/dev/null
	cmake --build $(BUILD) -j $(JOBS)
	DESTDIR=$(DESTDIR) cmake --install $(BUILD)

# The Debian packages wsio, libwsio0 and libwsio-dev, built in a tree of their own (prefix /usr), into
# $(PACKAGE_BUILD)/packages.
package: deps
	JOBS=$(JOBS) packaging/build-deb.sh $(CURDIR) $(abspath $(PACKAGE_BUILD))

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD) $(PACKAGE_BUILD)
