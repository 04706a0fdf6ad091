"""make run's function logs: one per run, the newest kept."""

from pathlib import Path

from local.run import remove_old_function_logs


def test_only_the_newest_function_logs_are_kept(tmp_path: Path) -> None:
    logs = [tmp_path / f"functions-20261206-{second:06d}-4242.log" for second in range(25)]
    for log in reversed(logs):  # written in another order than they sort
        log.write_text("{}\n")
    other = tmp_path / "state.json"
    other.write_text("{}")

    remove_old_function_logs(tmp_path, keep=20)

    assert sorted(tmp_path.glob("functions-*.log")) == logs[5:]
    assert other.exists()
