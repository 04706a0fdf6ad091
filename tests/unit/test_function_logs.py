"""make run's function logs: one per run, the newest kept."""

import os
import time
from pathlib import Path

from local.run import remove_old_function_logs


def test_only_the_newest_function_logs_are_kept(tmp_path: Path) -> None:
    logs = [tmp_path / f"functions-20261206-{second:06d}-4242.log" for second in range(25)]
    two_days_ago = time.time() - 2 * 86400
    for log in reversed(logs):  # written in another order than they sort
        log.write_text("{}\n")
        os.utime(log, (two_days_ago, two_days_ago))
    os.utime(logs[1])  # a make serve started long ago, still writing
    other = tmp_path / "state.json"
    other.write_text("{}")

    remove_old_function_logs(tmp_path, keep=20)

    assert sorted(tmp_path.glob("functions-*.log")) == [logs[1], *logs[5:]]
    assert other.exists()
