#!/bin/sh
# Segment every case in /workspace/inputs into /workspace/outputs (the challenge's entry point).
#
# This shell is the container's PID 1, and `docker stop` signals only PID 1: a shell does
# not pass SIGTERM or SIGINT on to its children. So python runs in the background, each
# of those signals is forwarded to it, and the shell waits until python has wound down
# (it leaves only complete outputs) and keeps python's exit status.
#
# The container runs as root, so files it writes (and an outputs folder Docker creates
# because it did not exist on the host) would be root's. Afterwards, hand what root
# made in /workspace/outputs to the owner of /workspace/inputs (the host user who
# prepared the cases), or to OUTPUT_OWNER=uid:gid if set, so they can be read and
# deleted without sudo.
#
# WORKERS=N (docker run -e WORKERS=4) segments N cases at a time, each worker process
# with its share of the cores; unset, one case at a time, as the organizers run it.
# SLICE_STEP=N (-e SLICE_STEP=3) runs the model on every Nth slice of a 3D box and
# interpolates the masks between; unset, every slice.
python -m inference -i /workspace/inputs -o /workspace/outputs ${WORKERS:+--workers "$WORKERS"} \
    ${SLICE_STEP:+--slice-step "$SLICE_STEP"} &
child=$!
trap 'kill -TERM "$child" 2>/dev/null' TERM
trap 'kill -INT "$child" 2>/dev/null' INT
wait "$child"
status=$?
# A trapped signal ends `wait` early, with python still running: wait again until it exits.
while kill -0 "$child" 2>/dev/null; do
    wait "$child"
    status=$?
done

owner="${OUTPUT_OWNER:-$(stat -c %u:%g /workspace/inputs 2>/dev/null)}"
if [ -d /workspace/outputs ] && [ "$(id -u)" = 0 ] && [ -n "$owner" ] && [ "$owner" != "0:0" ]; then
    find /workspace/outputs -user 0 -exec chown "$owner" {} + 2>/dev/null || true
fi
exit "$status"
