"""get_logger writes to the console and a file, and never duplicates lines."""

from mlsd.logging import get_logger, log_file


def test_logger_twice_does_not_duplicate(tmp_path, capsys):
    first = get_logger("mlsd.test_twice", log_dir=tmp_path)
    second = get_logger("mlsd.test_twice", log_dir=tmp_path)
    assert first is second
    second.info("hello once")
    out = capsys.readouterr().out
    assert out.count("hello once") == 1
    text = log_file(tmp_path).read_text()
    assert text.count("hello once") == 1


def test_level_from_argument(tmp_path, capsys):
    log = get_logger("mlsd.test_level", level="WARNING", log_dir=tmp_path)
    log.info("quiet")
    log.warning("loud")
    out = capsys.readouterr().out
    assert "quiet" not in out and "loud" in out


def test_new_log_dir_replaces_handlers(tmp_path):
    log = get_logger("mlsd.test_move", log_dir=tmp_path / "a")
    log = get_logger("mlsd.test_move", log_dir=tmp_path / "b")
    log.info("moved")
    assert len(log.handlers) == 2
    assert "moved" in log_file(tmp_path / "b").read_text()
    assert "moved" not in log_file(tmp_path / "a").read_text()
