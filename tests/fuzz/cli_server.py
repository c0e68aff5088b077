"""A fork server for the fuzz suite: imports the anyres CLI once, then runs each case in a forked child.

Protocol: one JSON request per stdin line ``{"args": [...], "cwd": DIR, "out": DIR, "timeout": S}``; the child
runs ``anyres ARGS`` (the real click entry point, one torch thread) with stdout and stderr sent to files in
OUT; the server answers one JSON line ``{"rc", "seconds", "peak_mb", "timed_out"}``. ``peak_mb`` is the
child's maximum resident set (``wait4``), which includes the pages it shares with this server (~0.3 GB).
Forking saves each case the ~2 s of importing torch; the server itself runs no torch op, so the children
start with no OpenMP state.
"""

import json
import os
import signal
import sys
import time

os.environ["OMP_NUM_THREADS"] = "1"
from anyres.cli import main  # noqa: E402  (after the thread setting)


def _child(request: dict) -> None:
    os.chdir(request["cwd"])
    out = os.open(os.path.join(request["out"], "stdout"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    err = os.open(os.path.join(request["out"], "stderr"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(out, 1)
    os.dup2(err, 2)
    sys.stdout = os.fdopen(1, "w", buffering=1)
    sys.stderr = os.fdopen(2, "w", buffering=1)
    code = 0
    try:
        main(request["args"], prog_name="anyres")
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:  # an uncaught exception: show it as python would, and fail like python does
        import traceback

        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def serve() -> None:
    for line in sys.stdin:
        request = json.loads(line)
        t0 = time.monotonic()
        pid = os.fork()
        if pid == 0:
            _child(request)
        timed_out = False
        deadline = t0 + request.get("timeout", 60)
        while True:
            done, status, usage = os.wait4(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                timed_out = True
                _, status, usage = os.wait4(pid, 0)
                break
            time.sleep(0.005)
        rc = os.waitstatus_to_exitcode(status)
        reply = {"rc": rc, "seconds": time.monotonic() - t0, "peak_mb": usage.ru_maxrss / 1024, "timed_out": timed_out}
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    serve()
