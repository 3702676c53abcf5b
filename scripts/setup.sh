#!/usr/bin/env bash
# Installs everything modelgate needs to build, test and benchmark on Debian 12, as root.
# Idempotent: a second run installs nothing and exits quickly.
#   ORT_ROOT=/path  use an official ONNX Runtime release folder (include/, lib/) instead of
#                   fetching one; the build then links against it.
set -euo pipefail
cd "$(dirname "$0")/.."

# ONNX Runtime 1.29.0 (official Linux x64 build) ships inside this npm registry package.
ORT_NPM_PKG="com.github.asus4.onnxruntime@0.4.9"
ORT_NPM_SHA256="e59788788818fdde1b2e522e766a21ba0f7d8391de55737abf81e32cc801785d"
ORT_DIR="third_party/onnxruntime"

# One package a line, grouped by what needs it.
DEB_PACKAGES=(
    # build
    build-essential
    cmake
    pkg-config
    git
    ca-certificates
    curl
    # libraries the daemon links
    libh2o-evloop-dev
    liburcu-dev
    libssl-dev
    libjansson-dev
    libxxhash-dev
    libpcre2-dev
    libcurl4-openssl-dev
    # the gRPC front end: gRPC core (C API) and protobuf-c; protoc-c generates the messages
    libgrpc-dev
    libprotobuf-c-dev
    protobuf-c-compiler
    # the sandboxed validation child's seccomp-bpf filter (src/sandbox)
    libseccomp-dev
    # Content-Encoding gzip/deflate of request and response bodies (src/net/encoding.c)
    zlib1g-dev
    # tests, sanitizers, fuzzing, format check
    libcmocka-dev
    clang
    clang-format
    libclang-rt-14-dev
    # gRPC integration tests: a real gRPC client, stubs generated from the project's .proto
    python3-grpcio
    python3-grpc-tools
    # the daemon's memcheck run (tests/it/test_valgrind.py)
    valgrind
    # model generation (never on the serving path)
    python3
    python3-onnx
    python3-numpy
    python3-sklearn
    # benchmark baseline and load generator
    nginx-light
    wrk
    # the gRPC load generator (bench/grpc_load.c): HTTP/2 framing and HPACK
    libnghttp2-dev
    # fleet tests and benchmark: a real etcd (v3 API, JSON gateway) and its etcdctl
    etcd-server
    etcd-client
    # observability tests: promtool and a real Prometheus server scraping /metrics; headless
    # Chromium (driven over its DevTools pipe) for the canary page, and a font to draw it with
    prometheus
    chromium
    fonts-dejavu-core
)

need=()
# npm fetches ONNX Runtime; a machine that already has Node.js (and its npm) keeps it.
command -v npm >/dev/null 2>&1 || need+=(npm)
for p in "${DEB_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if ((${#need[@]})); then
    echo "setup: installing ${need[*]}"
    if [ "$(id -u)" -ne 0 ]; then
        echo "setup: missing Debian packages and not root; run: sudo $0" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}"
    # nginx is only a benchmark baseline: never leave the packaged service running.
    systemctl disable --now nginx >/dev/null 2>&1 || service nginx stop >/dev/null 2>&1 || true
    # etcd likewise: the tests start their own on free ports; the packaged one would hold 2379.
    systemctl disable --now etcd >/dev/null 2>&1 || service etcd stop >/dev/null 2>&1 || true
    # Prometheus is started by the tests on loopback: the packaged service must not run (it
    # would take port 9090 and scrape nothing of ours).
    systemctl disable --now prometheus >/dev/null 2>&1 || service prometheus stop >/dev/null 2>&1 || true
fi

if [ -n "${ORT_ROOT:-}" ]; then
    [ -f "$ORT_ROOT/include/onnxruntime_c_api.h" ] || { echo "setup: ORT_ROOT=$ORT_ROOT has no include/onnxruntime_c_api.h" >&2; exit 1; }
    echo "setup: using ONNX Runtime from ORT_ROOT=$ORT_ROOT"
    exit 0
fi

if [ -f "$ORT_DIR/.complete" ] && [ "$(cat "$ORT_DIR/.complete")" = "$ORT_NPM_SHA256" ]; then
    exit 0
fi

echo "setup: fetching ONNX Runtime ($ORT_NPM_PKG)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "$ORT_NPM_PKG" >/dev/null)
tgz=$(ls "$tmp"/*.tgz)
got=$(sha256sum "$tgz" | cut -d' ' -f1)
if [ "$got" != "$ORT_NPM_SHA256" ]; then
    echo "setup: ONNX Runtime package checksum mismatch: got $got, want $ORT_NPM_SHA256" >&2
    exit 1
fi
hdr='package/Plugins/iOS~/onnxruntime.xcframework/ios-arm64/onnxruntime.framework/Headers'
tar -xzf "$tgz" -C "$tmp" package/Plugins/Linux/x64/libonnxruntime.so "$hdr" package/LICENSE
rm -rf "$ORT_DIR"
mkdir -p "$ORT_DIR/lib" "$ORT_DIR/include"
cp "$tmp/package/Plugins/Linux/x64/libonnxruntime.so" "$ORT_DIR/lib/libonnxruntime.so.1.29.0"
ln -s libonnxruntime.so.1.29.0 "$ORT_DIR/lib/libonnxruntime.so.1"
ln -s libonnxruntime.so.1 "$ORT_DIR/lib/libonnxruntime.so"
cp "$tmp/$hdr"/onnxruntime_*.h "$tmp/$hdr"/cpu_provider_factory.h "$ORT_DIR/include/"
cp "$tmp/package/LICENSE" "$ORT_DIR/LICENSE"
echo "$ORT_NPM_SHA256" > "$ORT_DIR/.complete"
echo "setup: ONNX Runtime 1.29.0 in $ORT_DIR"
