"""The session-end check finds a process the suite started, even one that is no longer its child."""

from __future__ import annotations

import subprocess
import sys
import uuid

from support.leftovers import carrying, stop, survivors_after

# Double fork and setsid, as pg_ctl starts a postmaster: the grandchild is not our child.
DAEMON = """
import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        time.sleep(60)
    os._exit(0)
"""


def test_a_daemonised_process_carrying_the_marker_is_found_then_stopped() -> None:
    token = uuid.uuid4().hex
    env = {"PATH": "/usr/bin:/bin", "PROBE_MARK": token}
    subprocess.run([sys.executable, "-c", DAEMON], env=env, check=True, timeout=30)

    left = survivors_after(token, grace_s=0.5, name="PROBE_MARK")
    try:
        [(_pid, cmdline)] = left
        assert cmdline.startswith(sys.executable)
    finally:
        stop([pid for pid, _ in left])
    assert carrying("PROBE_MARK", token) == []


def test_a_process_without_the_marker_is_not_counted() -> None:
    assert carrying("PROBE_MARK", uuid.uuid4().hex) == []
