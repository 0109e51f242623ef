import logging

from app.logs import LOG_FILE, setup_logging
from inference.paths import log_dir


def test_logs_go_to_a_rotating_file_in_the_data_folder():
    path = setup_logging("warning")
    try:
        assert path == log_dir() / LOG_FILE
        logging.getLogger("podium.test").info("hello from the test")
        for handler in logging.getLogger().handlers:
            handler.flush()
        assert "hello from the test" in path.read_text()
    finally:
        for handler in list(logging.getLogger().handlers):
            logging.getLogger().removeHandler(handler)
            handler.close()


def test_unwritable_data_folder_falls_back_to_the_console(monkeypatch, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("PODIUM_DATA_DIR", str(blocker))
    try:
        assert setup_logging() is None
        assert any(isinstance(h, logging.StreamHandler) for h in logging.getLogger().handlers)
    finally:
        for handler in list(logging.getLogger().handlers):
            logging.getLogger().removeHandler(handler)
