#!/bin/sh
# Makes docs/report-sweep.png, the README's picture of `orch report`: runs
# the shipped sweep (pipelines/sweep.lua) into a fresh store in a temporary
# folder, writes its report (`orch report --sweep 1 -o report.html`) and
# takes a screenshot of the page's top with headless Chromium; the PNG is
# reduced to 48 colours with Debian's python3-pil when it is there (keeps
# it under 100 KB).
#
#   make build && scripts/report_screenshot.sh
#
# Needs chromium (scripts/install-deps.sh --browser). Not part of the build
# or the tests; about a minute on two busy cores.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
ORCH_THREADS=1 "$top/orch" sweep "$top/pipelines/sweep.lua" --db orch.db --quiet
"$top/orch" report --sweep 1 -o report.html --db orch.db
browser=$(command -v chromium || command -v chromium-browser)
timeout -k 5 180 "$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars \
    --no-first-run --user-data-dir="$work/profile" --window-size=900,1500 \
    --screenshot="$work/shot.png" "file://$work/report.html" >/dev/null 2>&1
if /usr/bin/python3 -c 'import PIL' 2>/dev/null; then
    /usr/bin/python3 - "$work/shot.png" <<'PY'
import sys
from PIL import Image
im = Image.open(sys.argv[1]).convert("RGB")
im.quantize(colors=48, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
    sys.argv[1], optimize=True)
PY
fi
cp "$work/shot.png" "$top/docs/report-sweep.png"
echo "docs/report-sweep.png: $(wc -c <"$top/docs/report-sweep.png") bytes"
