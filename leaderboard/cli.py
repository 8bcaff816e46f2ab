"""`leaderboard`: the command line. Everything heavy (the metric catalogue, torch) is imported by
the command that needs it, so help and usage errors answer at once."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Static leaderboard for the MNIST GAN competition."""


@main.command()
@click.argument("results_dirs", nargs=-1, required=True,
                type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("-o", "--output", "site_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("site"), show_default=True)
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="Competition TOML (see leaderboard/README.md).")
def build(results_dirs: tuple[Path, ...], site_dir: Path, config_path: Path | None) -> None:
    """Build SITE_DIR from every result.json under the RESULTS_DIRS (works from file://),
    e.g. `leaderboard build results baselines/results`."""
    from competition.config import CompetitionConfig

    try:
        config = CompetitionConfig.load(config_path)
    except (ValueError, TypeError) as err:
        raise click.BadParameter(str(err), param_hint="--config") from err
    from leaderboard.build import build_site

    index = build_site(list(results_dirs), site_dir, config)
    click.echo(f"wrote {index}")


if __name__ == "__main__":
    sys.exit(main())
