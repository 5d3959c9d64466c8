#!/usr/bin/env bash
# Installs the machine-level tools the service and its tests use, from Debian's packages:
# Java 17 and Maven (the embedded Kafka broker), kcat (the third-party client test),
# Prometheus/promtool (the observability tests) and Chromium (headless, the HTML report test).
# Idempotent: does nothing when all are there. `system-deps.sh run` installs only what
# `make run` needs (Java and Maven).
set -euo pipefail

need=()
# want PACKAGE BINARY...: the package is needed unless every binary is on PATH (each
# binary a test calls is checked, not just one of the package's)
want() {
  local package=$1 binary
  shift
  for binary in "$@"; do
    if ! command -v "$binary" >/dev/null 2>&1; then
      [[ " ${need[*]} " == *" $package "* ]] || need+=("$package")
      return
    fi
  done
}
want openjdk-17-jre-headless java
want maven mvn
if [ "${1:-all}" != "run" ]; then
  want kcat kcat                      # tests/test_pipeline_kafka.py
  want prometheus prometheus promtool # tests/test_observability_kafka.py, test_prometheus_rules.py
  # tests/test_report_html.py takes chromium or chromium-browser
  command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 \
    || need+=(chromium)
fi

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi

echo "system-deps: installing ${need[*]}" >&2
if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  SUDO=(sudo)
else
  echo "system-deps: missing ${need[*]}; install them with your package manager" \
       "(Debian/Ubuntu: apt-get install ${need[*]}), or point the service at an existing" \
       "cluster with MOT_KAFKA_BOOTSTRAP_SERVERS=host:port." >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "system-deps: no apt-get here; install ${need[*]} by hand" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# The prometheus package starts a system service on :9090; the tests run their own.
if [[ " ${need[*]} " == *" prometheus "* ]] && command -v systemctl >/dev/null 2>&1; then
  "${SUDO[@]}" systemctl disable --now prometheus >/dev/null 2>&1 || true
fi
