from pathlib import Path

import pytest

from assistant.config import load_config
from assistant.errors import ConfigError
from assistant.paths import data_dir


def test_data_dir_honours_assistant_home(home: Path) -> None:
    assert data_dir() == home


def test_defaults_without_file() -> None:
    config = load_config()
    assert config.model == "smollm2-135m"
    assert config.backend == "local"
    assert config.n_ctx is None


def test_file_then_environment_then_flags(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home.mkdir()
    (home / "config.toml").write_text('temperature = 0.7\nmax_tokens = 100\nmodel = "a"\n')
    monkeypatch.setenv("ASSISTANT_MAX_TOKENS", "200")
    monkeypatch.setenv("ASSISTANT_MODEL", "b")
    config = load_config({"model": "c", "temperature": None})
    assert (config.temperature, config.max_tokens, config.model) == (0.7, 200, "c")
    assert config.home == home


def test_unknown_key_names_the_valid_ones(home: Path) -> None:
    home.mkdir()
    (home / "config.toml").write_text("temprature = 0.1\n")
    with pytest.raises(ConfigError, match=r"unknown setting 'temprature'.*temperature"):
        load_config()


def test_wrong_type_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSISTANT_N_CTX", "lots")
    with pytest.raises(ConfigError, match=r"'n_ctx' in \$ASSISTANT_N_CTX must be int"):
        load_config()


def test_broken_toml_says_which_file(home: Path) -> None:
    home.mkdir()
    (home / "config.toml").write_text("model = \n")
    with pytest.raises(ConfigError, match=r"config\.toml"):
        load_config()


def test_invalid_backend_rejected() -> None:
    with pytest.raises(ConfigError, match="backend must be one of local, server"):
        load_config({"backend": "cloud"})


def test_none_string_clears_optional_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSISTANT_SEED", "none")
    assert load_config().seed is None
    monkeypatch.setenv("ASSISTANT_SEED", "7")
    assert load_config().seed == 7
