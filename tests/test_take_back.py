"""A run that loses data, under a tracer or a profiler, ends.

The replay that names the call behind each wrong page runs under the run's
time limit; when it ends, a stop the watchdog may have had on its way to
the run's thread is taken back.  It was taken back with
``PyThreadState_SetAsyncExc(thread, NULL)``, which leaves set the
interpreter's word that an exception is pending: under a tracer or a
profiler (a debugger, coverage, ``cProfile``: what ``FSAOPS_NO_SUPERVISOR``
is documented for) Python 3.11 then checked it again at the same
instruction for ever, and the run never reported.  Each case runs in a
child Python with a time limit (``guarded.run``), since the failure is a hang.
"""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import pytest

from fsaops.testing.dist import write_dist_info
from guarded import run

PLUGINS = Path(__file__).parent / "configs" / "plugins"

SCENARIO = """\
[kernel]
node_memory = "2MiB"
[plugins]
load = ["buggyfs"]
[[mount]]
fs = "bug_moves_the_slot_only"
pages = 48
files = 2
block_size = 1024
[workload]
seed = 3
dirty = 0.3
"""

TRACED_RUN = textwrap.dedent(
    """
    import json, sys
    from fsaops.cli import main

    sys.settrace(lambda frame, event, arg: None)  # as a debugger or coverage does
    status = main(["migrate", sys.argv[1], "--json", "--no-progress"])
    sys.settrace(None)
    sys.exit(status)
    """
)


def test_taking_back_leaves_nothing_pending_under_a_tracer() -> None:
    code = textwrap.dedent(
        """
        import sys, threading
        from fsaops.scenario import _raise_in

        sys.settrace(lambda frame, event, arg: None)
        _raise_in(threading.get_ident(), None)

        def called():
            return "went on"

        print(called())
        """
    )
    done = run([sys.executable, "-c", code])
    assert (done.returncode, done.stdout.strip()) == (0, "went on"), done.stderr


@pytest.mark.parametrize("supervised", [True, False], ids=["supervised", "in_one_process"])
def test_a_run_that_loses_data_reports_under_a_tracer(tmp_path: Path, supervised: bool) -> None:
    site = tmp_path / "site"
    site.mkdir()
    write_dist_info(site, "fsaops-buggyfs", {"fsaops": {"buggyfs": "buggyfs_plugin"}})
    path = tmp_path / "lossy.toml"
    path.write_text(SCENARIO, encoding="utf-8")
    env = {"PYTHONPATH": os.pathsep.join([str(site), str(PLUGINS)])}
    if not supervised:
        env["FSAOPS_NO_SUPERVISOR"] = "1"
    done = run([sys.executable, "-c", TRACED_RUN, path], env=env)
    assert done.returncode == 1, done.stderr
    assert '"status": "data lost"' in done.stdout
    assert "; the replay saw no migratepage call change it" in done.stdout  # the replay ended
