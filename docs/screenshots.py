"""Screenshots of the leaderboard for the README: a real round over the kit, some baselines, a team that
post-processes its samples (a rule violation), one that copies MNIST digits (memorisation) and one
that crashes, at 2,000 samples each; then the index and one team page in headless Chromium at
1,366 px.

    MNIST_ROOT=../shared/data python docs/screenshots.py      # writes docs/leaderboard-*.png

Needs bubblewrap, chromium and chromium-driver (as the tests do).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from baselines.recipes import assemble  # noqa: E402
from evaluator import mnist  # noqa: E402
from tests.leaderboard.test_browser import chromium  # noqa: E402

BASELINES = ("vanilla", "wgan-gp", "wgan-gp-latent-ga", "vanilla-interpolation", "fgan-js", "msgan", "wgan",
             "fgan-reverse-kl")
SAMPLES = 2000


def teams(root: Path) -> list[tuple[str, Path]]:
    made = [("kit", REPO / "submission")]
    made += [(folder.name, folder) for folder in assemble(list(BASELINES), root / "baselines")]
    flipped = root / "flipped"
    shutil.copytree(REPO / "submission", flipped)
    script = (flipped / "generate.py").read_text()
    line = 'pixels = to_uint8(images, config.get("pixels"))'
    assert line in script, "the kit's generate.py changed: update the flipped team"
    (flipped / "generate.py").write_text(script.replace(line, line + "[:, :, ::-1].copy()"))
    copier = root / "copier"
    copier.mkdir()
    np.save(copier / "digits.npy", mnist.load_split("test").images[:SAMPLES])
    (copier / "generate.py").write_text(
        "import os, numpy as np\nfrom PIL import Image\nos.makedirs('samples', exist_ok=True)\n"
        "for i, d in enumerate(np.load('digits.npy')):\n    Image.fromarray(d).save(f'samples/{i}.png')\n")
    broken = root / "broken"
    broken.mkdir()
    (broken / "generate.py").write_text("import torch\ntorch.zeros(1).cuda()\n")
    return made + [("flipped", flipped), ("copier", copier), ("broken", broken)]


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="screenshots-"))
    roster = "".join(f'[[teams]]\nname = "{name}"\nsource = "{folder}"\n' for name, folder in teams(root))
    config = root / "competition.toml"
    config.write_text(f'title = "Data Science Lab: MNIST GANs"\njobs = 2\n[limits]\nsamples = {SAMPLES}\n{roster}')
    subprocess.run([sys.executable, "-m", "competition", "round", str(config)], check=True, env=os.environ)
    index = root / "site" / "index.html"
    driver = chromium(root / "profile", 1366, 1500)
    try:
        driver.get(index.resolve().as_uri())
        driver.save_screenshot(str(REPO / "docs" / "leaderboard-index.png"))
        driver.find_element("link text", "copier").click()
        driver.save_screenshot(str(REPO / "docs" / "leaderboard-team.png"))
    finally:
        driver.quit()
    print(f"wrote docs/leaderboard-index.png and docs/leaderboard-team.png from {root}")


if __name__ == "__main__":
    main()
