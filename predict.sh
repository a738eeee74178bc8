#!/bin/sh
# Segment every case in /workspace/inputs into /workspace/outputs (the challenge's entry point).
#
# The container runs as root, so files it writes (and an outputs folder Docker creates
# because it did not exist on the host) would be root's. Afterwards, hand what root
# made in /workspace/outputs to the owner of /workspace/inputs (the host user who
# prepared the cases), or to OUTPUT_OWNER=uid:gid if set, so they can be read and
# deleted without sudo. Inference's exit status is kept.
status=0
python -m inference -i /workspace/inputs -o /workspace/outputs || status=$?

owner="${OUTPUT_OWNER:-$(stat -c %u:%g /workspace/inputs 2>/dev/null)}"
if [ -d /workspace/outputs ] && [ "$(id -u)" = 0 ] && [ -n "$owner" ] && [ "$owner" != "0:0" ]; then
    find /workspace/outputs -user 0 -exec chown "$owner" {} + 2>/dev/null || true
fi
exit "$status"
