"""``python job_shell.py CMD ...``: run CMD as the foreground job of this terminal, as an interactive
shell with job control does (its own process group, made the terminal's foreground group), then stay
alive like the shell would. Started as the session leader of a pty by ``test_ui_command.py``, so
Ctrl-C reaches exactly the job's process group and the job's exit sends no SIGHUP to anyone."""

from __future__ import annotations

import os
import signal
import sys


def main(argv: list[str]) -> None:
    signal.signal(signal.SIGTTOU, signal.SIG_IGN)  # a background group may take the terminal back
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the shell survives the job's Ctrl-C
    pid = os.fork()
    if pid == 0:
        os.setpgid(0, 0)
        os.tcsetpgrp(0, os.getpgrp())
        signal.signal(signal.SIGTTOU, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.execvp(argv[0], argv)
    try:
        os.setpgid(pid, pid)
    except PermissionError:  # the child has exec'd already (and set it itself)
        pass
    os.tcsetpgrp(0, pid)
    _, status = os.waitpid(pid, 0)
    os.tcsetpgrp(0, os.getpgrp())
    print(f"\n[job exited: {os.waitstatus_to_exitcode(status)}]", flush=True)
    signal.pause()  # like a shell waiting at its prompt, until the test ends it


if __name__ == "__main__":
    main(sys.argv[1:])
