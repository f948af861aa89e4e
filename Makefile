# Thin front of the CMake build. `make run` and `make test` install what they need first.
BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
JOBS       ?= $(shell nproc)
CC         ?= cc
FUZZ_SECONDS ?= 60
HOST ?= 0.0.0.0
PORT ?= 3000

.PHONY: all deps run test test-fast asan bench fuzz clean

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

fuzz: deps
	cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang -DWSIO_FUZZ=ON -DWSIO_TESTS=OFF >/dev/null
	cmake --build $(FUZZ_BUILD) -j $(JOBS)
	scripts/fuzz $(FUZZ_BUILD) $(FUZZ_SECONDS)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
