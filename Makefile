# modelgate: `make run` starts the demo, `make test` runs everything CI runs.
JOBS ?= $(shell nproc)
BUILD ?= build
TEST_BUILD ?= build-test
ASAN_BUILD ?= build-asan
TSAN_BUILD ?= build-tsan
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
LISTEN ?= 127.0.0.1:8000
GRPC_LISTEN ?= 127.0.0.1:8001
CMAKE_FLAGS ?=

.PHONY: all setup build run test unit asan tsan format format-check bench fuzz clean models

all: build

setup:
	bash scripts/setup.sh

# The daemon `make run` starts and `make bench` measures: no fault-injection hook (MG_FAULTS).
$(BUILD)/Makefile:
	cmake -S . -B $(BUILD) -DMG_WERROR=ON -DMG_FAULTS=OFF $(CMAKE_FLAGS)

build: setup $(BUILD)/Makefile
	cmake --build $(BUILD) -j $(JOBS)

run: build
	$(BUILD)/modelgate serve --repo models --listen $(LISTEN) --grpc-listen $(GRPC_LISTEN)

# The test builds (release here, sanitizers below) have the fault-injection hook the breaker
# and drain tests use (MG_FAULTS=ON); they are otherwise the same build as $(BUILD).
unit: setup
	cmake -S . -B $(TEST_BUILD) -DMG_WERROR=ON -DMG_FAULTS=ON $(CMAKE_FLAGS)
	cmake --build $(TEST_BUILD) -j $(JOBS)
	cd $(TEST_BUILD) && ctest --output-on-failure -j $(JOBS)

asan: setup
	cmake -S . -B $(ASAN_BUILD) -DMG_WERROR=ON -DMG_FAULTS=ON -DMG_SANITIZE=address,undefined -DCMAKE_BUILD_TYPE=Debug $(CMAKE_FLAGS)
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	    LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    ctest --output-on-failure -j $(JOBS)

# ThreadSanitizer: the unit tests (readers and writers of the RCU snapshots, the route table
# under concurrent matching, sessions run from several threads).
tsan: setup
	cmake -S . -B $(TSAN_BUILD) -DMG_WERROR=ON -DMG_FAULTS=ON -DMG_SANITIZE=thread -DCMAKE_BUILD_TYPE=Debug $(CMAKE_FLAGS)
	cmake --build $(TSAN_BUILD) -j $(JOBS)
	cd $(TSAN_BUILD) && TSAN_OPTIONS=halt_on_error=1:exitcode=66:suppressions=$(CURDIR)/tests/tsan.supp ctest --output-on-failure -j $(JOBS) -R '^unit[.]'

C_SOURCES = $(wildcard src/*.c src/*/*.c src/*/*.h tests/*/*.c tests/*/*.h bench/*.c fuzz/*.c)

# .clang-format (LLVM base, 4 spaces, 100 columns) over every C file.
format-check: setup
	clang-format --dry-run -Werror $(C_SOURCES)

format:
	clang-format -i $(C_SOURCES)

test: format-check unit asan tsan

bench: build
	bash bench/run.sh $(BUILD)

# libFuzzer targets with the library instrumented too (clang), each run FUZZ_SECONDS; prints
# executions and coverage per target (scripts/fuzz.sh). FUZZ_JOBS=N runs N at a time.
fuzz: setup
	cmake -S . -B $(FUZZ_BUILD) -DCMAKE_C_COMPILER=clang -DMG_FUZZ=ON -DBUILD_TESTING=OFF $(CMAKE_FLAGS)
	cmake --build $(FUZZ_BUILD) -j $(JOBS)
	bash scripts/fuzz.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

models:
	/usr/bin/python3 scripts/gen_digits.py models

clean:
	rm -rf $(BUILD) $(TEST_BUILD) $(ASAN_BUILD) $(TSAN_BUILD) $(FUZZ_BUILD)
