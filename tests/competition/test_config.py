"""competition.toml: the minimal form, every setting's type, and errors that name the line."""

from __future__ import annotations

import pytest

from competition.config import CompetitionConfig, ConfigError, Team


def load(tmp_path, text: str) -> CompetitionConfig:
    path = tmp_path / "competition.toml"
    path.write_text(text)
    return CompetitionConfig.load(path)


def test_the_minimal_form(tmp_path):
    config = load(tmp_path, 'results_dir = "results"\n[[teams]]\nname = "team-a"\nsource = "path/to/folder"\n'
                            'ref = "main"\n[[teams]]\nname = "team-b"\nsource = "https://git.example/b.git"\n')
    assert config.results_dir == "results"
    assert config.teams == [Team("team-a", "path/to/folder", "main"), Team("team-b", "https://git.example/b.git")]
    assert config.rule_violation == "unranked" and config.rank_by is None  # decided by the leaderboard


def test_an_empty_file_is_every_default(tmp_path):
    assert load(tmp_path, "") == CompetitionConfig(source=tmp_path / "competition.toml")


@pytest.mark.parametrize("text,line,words", [
    ('title = "x"\nrule_violation = "ban"\n', 2, "rule_violation must be one of"),
    ('title = "x"\n\nseed = "42"\n', 3, 'seed must be an integer or "secret"'),
    ('jobs = 1.5\n', 1, "jobs must be an integer, not a number"),
    ('[limits]\ntimeout = 60\nmemory = "lots"\n', 3, "limits.memory: not a size"),
    ('[slurm]\npartition = "gpu"\nqueue = "x"\n', 3, "unknown setting 'queue' in [slurm]"),
    ('[limits]\ntimeout = -1\n', 2, "limits.timeout must not be negative"),
    ('quota = 0\n', 1, "quota must be at least 1"),
    ('selection = "worst"\n', 1, "selection"),
    ('title = "x"\nrank = "mnist.fid"\n', 2, "unknown setting 'rank'"),
    ('[[teams]]\nname = "a"\nsource = "x"\n[[teams]]\nname = "a"\nsource = "y"\n', 5, "appears twice"),
    ('[[teams]]\nname = "a b"\nsource = "x"\n', 2, "must be 1-64 letters"),
    ('[[teams]]\nname = "a"\nsource = "x"\nbranch = "main"\n', 4, "unknown team setting 'branch'"),
    ('[[teams]]\nname = "a"\n', 2, "needs a source"),
    ('metrics = ["mnist.fid", 3]\n', 1, "list of strings"),
])
def test_bad_settings_name_their_line(tmp_path, text, line, words):
    with pytest.raises(ConfigError) as error:
        load(tmp_path, text)
    assert f"line {line}:" in str(error.value) and words in str(error.value)


def test_every_table(tmp_path):
    config = load(tmp_path, 'seed = "secret"\nfeatures = ["mnist", "inception"]\ngpu = true\njobs = 2\nquota = 3\n'
                            '[limits]\ntimeout = 120\nmemory = "4G"\nsamples = 500\n[fetch]\ntimeout = 30\n'
                            '[requirements]\ninstall = true\n[slurm]\npartition = "gpu"\ngres = "gpu:1"\n'
                            'extra = ["--qos=short"]\n')
    assert config.seed == "secret" and config.features == ["mnist", "inception"] and config.jobs == 2
    assert config.limits.timeout == 120 and config.limits.memory == "4G" and config.limits.samples == 500
    assert config.fetch.timeout == 30 and config.requirements.install
    assert config.slurm.partition == "gpu" and config.slurm.extra == ("--qos=short",)
    assert config.path("results") == (tmp_path / "results").resolve()


def test_syntax_errors_carry_tomls_position(tmp_path):
    with pytest.raises(ConfigError, match=r"not valid TOML: .*line 2"):
        load(tmp_path, 'title = "x"\nseed = = 3\n')


def test_a_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot be read"):
        CompetitionConfig.load(tmp_path / "absent.toml")
