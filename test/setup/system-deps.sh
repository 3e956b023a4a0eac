#!/usr/bin/env bash
# Debian packages the test suite talks to for real: Chromium (browser tests through playwright-core),
# Python grpcio (an independent gRPC client), protoc (encoding cross-checks), promtool (/metrics lint),
# openssl (certificates made at test time for TLS on the ALS port).
# Installs whatever is missing when run as root; otherwise says what to install.
set -euo pipefail
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
/usr/bin/python3 -c 'import grpc' >/dev/null 2>&1 || missing+=(python3-grpcio)
command -v protoc >/dev/null 2>&1 || missing+=(protobuf-compiler)
# protoc finds google/protobuf/*.proto (imported by Envoy's protos) in libprotobuf-dev, only a Recommends of protoc.
[ -f /usr/include/google/protobuf/descriptor.proto ] || missing+=(libprotobuf-dev)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "The tests need these Debian packages: ${missing[*]}" >&2
  echo "Install them with: sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "Installing Debian packages for the tests: ${missing[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
