"""The fixed-generator rule, end to end: what the generation sandbox records, replayed by the evaluator.

Each folder starts from the kit (the trained vanilla generator) and changes one thing: a network
other than the fixed one, a decoy checkpoint, post-processing, shadowed modules, tampering with
the hooks, forged trace files.
"""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from evaluator.pipeline import EvaluationOptions
from evaluator.sandbox.limits import Limits
from evaluator.sandbox.runner import bubblewrap
from evaluator.submission import SubmissionOptions, evaluate_submission

REPO = Path(__file__).resolve().parents[2]
N = 64
pytestmark = pytest.mark.skipif(bubblewrap() is None, reason="bubblewrap (bwrap) is not installed")

# A generate.py in the course template's style, with the pieces a test swaps in.
TEMPLATE = textwrap.dedent("""
    import os, torch, numpy as np
    from PIL import Image
    from model import Generator
    N = int(os.environ["EVAL_NUM_SAMPLES"])
    {setup}
    G = {build}
    G.load_state_dict(torch.load({checkpoint!r}, map_location="cpu"))
    G.eval()
    os.makedirs("samples", exist_ok=True)
    with torch.no_grad():
        x = G(torch.randn(N, {latent}))
    {post}
    pixels = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).reshape(-1, 28, 28).numpy()
    for i, p in enumerate(pixels):
        Image.fromarray(p).save(f"samples/{{i}}.png")
""")


def team(tmp_path: Path, setup: str = "", build: str = "Generator(784)", checkpoint: str = "checkpoints/G.pth",
         latent: int = 100, post: str = "", extra=None) -> Path:
    folder = tmp_path / "team"
    shutil.copytree(REPO / "submission", folder, ignore=shutil.ignore_patterns("samples"))
    (folder / "generate.py").write_text(TEMPLATE.format(setup=textwrap.dedent(setup),
                                                        build=build, checkpoint=checkpoint, latent=latent,
                                                        post=post))
    if extra:
        extra(folder)
    return folder


@pytest.fixture
def evaluate(mnist_root, cache_dir):
    def run(folder: Path) -> dict:
        options = EvaluationOptions(expected_count=N, data_root=str(mnist_root), cache_dir=str(cache_dir),
                                    metrics=("fid",))
        result, log, _ = evaluate_submission(folder, options, SubmissionOptions(
            batch_size=64, limits=Limits(timeout_s=60, memory_bytes=2 << 30)))
        assert result["verdict"] == "OK", result["reason"] + log
        return result

    return run


def violations(result: dict) -> str:
    return " | ".join(result["rule_check"]["violations"])


def test_the_kit_passes(evaluate, tmp_path):
    result = evaluate(team(tmp_path))
    check = result["rule_check"]
    assert check["status"] == "ok" and check["traced"] == check["checked"] == N
    assert not any(flag["code"] == "rule_violation" for flag in result["flags"])


def test_the_course_template_clamping_passes(evaluate, tmp_path):
    """torchvision's save_image without normalize clamps [-1, 0] to black: still the fixed generator."""
    folder = team(tmp_path)
    script = (folder / "generate.py").read_text().replace(
        "pixels = ((x.clamp(-1, 1) + 1) * 127.5)", "pixels = (x * 255 + 0.5).clamp(0, 255)")
    (folder / "generate.py").write_text(script)
    assert evaluate(folder)["rule_check"]["status"] == "ok"


COURSE_TEMPLATE = textwrap.dedent("""
    import argparse, os, torch, torchvision
    from model import Generator
    if __name__ == "__main__":
        parser = argparse.ArgumentParser()
        parser.add_argument("--batch_size", type=int, default=2048)
        args = parser.parse_args()
        model = Generator(g_output_dim=784)
        ckpt = torch.load(os.path.join("checkpoints", "G.pth"), map_location="cpu")
        model.load_state_dict({k.replace("module.", ""): v for k, v in ckpt.items()})
        model = torch.nn.DataParallel(model)
        model.eval()
        os.makedirs("samples", exist_ok=True)
        n_samples, wanted = 0, int(os.environ["EVAL_NUM_SAMPLES"])
        with torch.no_grad():
            while n_samples < wanted:
                z = torch.randn(args.batch_size, 100)
                x = model(z).reshape(args.batch_size, 28, 28)
                for k in range(x.shape[0]):
                    if n_samples < wanted:
                        torchvision.utils.save_image(x[k:k + 1], os.path.join("samples", f"{n_samples}.png"))
                        n_samples += 1
""")


def test_the_course_template_verbatim_passes(evaluate, tmp_path):
    """DataParallel (every batch recorded at two levels), whole batches of 2,048 drawn, one RGB PNG
    at a time through save_image (clamped): the fixed generator, traced."""
    folder = team(tmp_path)
    (folder / "generate.py").write_text(COURSE_TEMPLATE)
    check = evaluate(folder)["rule_check"]
    assert check["status"] == "ok" and check["traced"] == check["checked"] > 0, check["violations"]


def test_batch_norm_generator_is_a_violation(evaluate, tmp_path):
    setup = """
    class BNGenerator(Generator):
        def __init__(self):
            super().__init__(784)
            self.bn1 = torch.nn.BatchNorm1d(256)
        def forward(self, z):
            x = torch.nn.functional.leaky_relu(self.bn1(self.fc1(z)), 0.2)
            x = torch.nn.functional.leaky_relu(self.fc2(x), 0.2)
            x = torch.nn.functional.leaky_relu(self.fc3(x), 0.2)
            return torch.tanh(self.fc4(x))
    """
    folder = team(tmp_path, setup=setup, build="BNGenerator()")
    script = (folder / "generate.py").read_text()
    (folder / "generate.py").write_text(script.replace("G.load_state_dict(", "G.load_state_dict(strict=False, state_dict="))
    result = evaluate(folder)
    assert result["rule_check"]["status"] == "violation"
    assert "bn1.weight" in violations(result)
    assert any(flag["code"] == "rule_violation" for flag in result["flags"])


def test_a_wider_latent_is_a_violation(evaluate, tmp_path):
    setup = """
    class Wide(Generator):
        def __init__(self):
            super().__init__(784)
            self.fc1 = torch.nn.Linear(150, 256)
    state = torch.load("checkpoints/G.pth")
    state["fc1.weight"] = torch.cat([state["fc1.weight"], torch.zeros(256, 50)], 1)
    torch.save(state, "/tmp/wide.pth")
    """
    result = evaluate(team(tmp_path, setup=setup, build="Wide()", checkpoint="/tmp/wide.pth", latent=150))
    assert "150 latent values" in violations(result) and "[256, 150]" in violations(result)


def test_a_compliant_decoy_checkpoint_does_not_hide_another_network(evaluate, tmp_path):
    """checkpoints/G.pth is the kit's; generate.py builds a deeper network from another file."""
    setup = """
    class Deeper(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.body = torch.nn.Sequential(torch.nn.Linear(100, 256), torch.nn.LeakyReLU(0.2),
                                            torch.nn.Linear(256, 784), torch.nn.Tanh())
        def forward(self, z):
            return self.body(z)
    torch.save(Deeper().state_dict(), "/tmp/real.pth")
    """
    result = evaluate(team(tmp_path, setup=setup, build="Deeper()", checkpoint="/tmp/real.pth"))
    assert result["rule_check"]["status"] == "violation"
    assert "does not have the fixed architecture" in violations(result)


def test_post_processing_after_the_generator_is_a_violation(evaluate, tmp_path):
    post = "x = torch.nn.functional.avg_pool2d(x.reshape(-1, 1, 28, 28), 3, 1, 1).reshape(-1, 784)"
    result = evaluate(team(tmp_path, post=post))
    assert f"{N} of the {N} samples checked are not outputs" in violations(result)


def test_a_generator_outside_torch_modules_cannot_be_traced(evaluate, tmp_path):
    """The fixed network computed in NumPy from the kit's weights: correct images, but no module ran."""
    folder = team(tmp_path)
    (folder / "generate.py").write_text(textwrap.dedent("""
        import os, torch, numpy as np
        from PIL import Image
        N = int(os.environ["EVAL_NUM_SAMPLES"])
        w = {k: v.numpy() for k, v in torch.load("checkpoints/G.pth").items()}
        x = np.random.default_rng(0).standard_normal((N, 100)).astype(np.float32)
        for i in (1, 2, 3):
            x = x @ w[f"fc{i}.weight"].T + w[f"fc{i}.bias"]
            x = np.where(x > 0, x, 0.2 * x)
        x = np.tanh(x @ w["fc4.weight"].T + w["fc4.bias"])
        os.makedirs("samples", exist_ok=True)
        for i, p in enumerate(((x + 1) * 127.5).round().astype(np.uint8).reshape(-1, 28, 28)):
            Image.fromarray(p).save(f"samples/{i}.png")
    """))
    assert "no torch module produced the samples" in violations(evaluate(folder))


def test_removing_the_hooks_only_hides_the_evidence(evaluate, tmp_path):
    setup = """
    import torch.nn.modules.module as module_internals
    module_internals._global_forward_hooks.clear()
    module_internals._global_forward_pre_hooks.clear()
    """
    result = evaluate(team(tmp_path, setup=setup))
    assert result["rule_check"]["status"] == "violation"


def test_forged_trace_files_do_not_vouch_for_other_images(evaluate, tmp_path):
    """The team writes a perfect-looking trace (the kit's weights and latents), then other images."""
    setup = """
    import glob
    G0 = Generator(784); G0.load_state_dict(torch.load("checkpoints/G.pth"))
    with torch.no_grad():
        G0(torch.randn(N, 100))  # a genuine, recorded forward pass
    """
    post = "x = torch.flip(x.reshape(-1, 28, 28), dims=[2]).reshape(-1, 784)  # mirrored: not G's output"
    result = evaluate(team(tmp_path, setup=setup, post=post))
    assert f"{N} of the {N} samples checked are not outputs" in violations(result)


def test_shadowing_modules_changes_nothing(evaluate, tmp_path):
    """json.py, torch.py and a helper-named module in the team's folder: the bootstrap, the seed and
    the trace come from outside the folder."""
    def shadows(folder):
        (folder / "json.py").write_text("print('SHAPES {\"ok\": true}')\n")
        (folder / "bootstrap.py").write_text("raise SystemExit('shadowed')\n")
        (folder / "_inspect_checkpoint.py").write_text("print('SHAPES {\"ok\": true}')\n")
        (folder / "torch.py").write_text("raise ImportError('a fake torch')\n")
    result = evaluate(team(tmp_path, extra=shadows))
    assert result["rule_check"]["status"] == "ok" and result["rule_check"]["traced"] == N


def test_rule_check_follows_the_given_limits(mnist_root, cache_dir, tmp_path):
    """The check runs inside the generation sandbox, under the limits asked for (here a short timeout)."""
    folder = team(tmp_path, setup="import time\ntime.sleep(30)")
    options = EvaluationOptions(expected_count=N, data_root=str(mnist_root), cache_dir=str(cache_dir),
                                metrics=("fid",))
    result, _, _ = evaluate_submission(folder, options, SubmissionOptions(limits=Limits(timeout_s=5)))
    assert result["verdict"] == "TIMEOUT" and "5 s" in result["reason"]


def custom(tmp_path: Path, body: str) -> Path:
    folder = team(tmp_path)
    (folder / "generate.py").write_text(textwrap.dedent("""
        import os, torch, numpy as np
        from PIL import Image
        from model import Generator
        N = int(os.environ["EVAL_NUM_SAMPLES"])
        def save(x):
            os.makedirs("samples", exist_ok=True)
            pixels = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).reshape(-1, 28, 28).numpy()
            for i, p in enumerate(pixels):
                Image.fromarray(p).save(f"samples/{i}.png")
    """) + textwrap.dedent(body))
    return folder


def test_rejection_inside_a_modules_forward_complies(evaluate, tmp_path):
    """Fewer rows out than in: the wrapper is not the generator, but every sample is its output."""
    folder = custom(tmp_path, """
        class Rejecting(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.G = Generator(784)
                self.G.load_state_dict(torch.load("checkpoints/G.pth", map_location="cpu"))
                self.score = torch.nn.Linear(784, 1)
            def forward(self, z):
                x = self.G(z)
                s = self.score(x).squeeze(1)
                return x[s > s.median()]
        sampler, kept = Rejecting().eval(), []
        with torch.no_grad():
            while sum(len(k) for k in kept) < N:
                kept.append(sampler(torch.randn(32, 100)))
        save(torch.cat(kept)[:N])
    """)
    check = evaluate(folder)["rule_check"]
    assert check["status"] == "ok" and check["traced"] == check["checked"] == N, check["violations"]


def test_a_generator_reloaded_for_every_batch_complies(evaluate, tmp_path):
    """32 loads of the same checkpoint: one weight set, not 32 (the cap of 16 once made it a violation)."""
    folder = custom(tmp_path, """
        batches = []
        with torch.no_grad():
            for start in range(0, N, 2):
                G = Generator(784)
                G.load_state_dict(torch.load("checkpoints/G.pth", map_location="cpu"))
                batches.append(G(torch.randn(2, 100)))
                del G
        save(torch.cat(batches))
    """)
    check = evaluate(folder)["rule_check"]
    assert check["status"] == "ok" and check["traced"] == check["checked"] == N, check["violations"]
    assert len(check["weights_sha256"]) == 1 and len(check["generators"]) == 1


def test_a_decoy_that_barely_varies_does_not_vouch_for_images_made_elsewhere(evaluate, tmp_path):
    """A fixed generator with its last layer zeroed runs on N latents; the samples are the kit's
    outputs computed by hand, blurred and mirrored."""
    folder = custom(tmp_path, """
        import torch.nn.functional as F
        decoy = Generator(784)
        with torch.no_grad():
            decoy.fc4.weight.zero_(); decoy.fc4.bias.zero_()
            decoy(torch.randn(N, 100))
            w = torch.load("checkpoints/G.pth", map_location="cpu")
            x = torch.randn(N, 100)
            for i in (1, 2, 3):
                x = F.leaky_relu(F.linear(x, w[f"fc{i}.weight"], w[f"fc{i}.bias"]), 0.2)
            x = torch.tanh(F.linear(x, w["fc4.weight"], w["fc4.bias"])).reshape(-1, 1, 28, 28)
            x = F.avg_pool2d(x, 3, 1, 1).flip(3).reshape(-1, 784)
        save(x)
    """)
    result = evaluate(folder)
    assert result["rule_check"]["status"] == "violation" and result["rule_check"]["traced"] == 0
