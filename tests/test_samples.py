"""Every validation failure of a samples folder, and the happy path."""

from __future__ import annotations

import os
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from evaluator.samples import validate_samples, write_samples

N = 12


@pytest.fixture
def good_dir(tmp_path, rng):
    images = rng.integers(0, 256, size=(N, 28, 28), dtype=np.uint8)
    return write_samples(images, tmp_path / "samples"), images


def codes(report) -> dict[str, list[str]]:
    return {code: sorted(p.file for p in problems) for code, problems in report.by_code().items()}


def test_valid_folder_loads_exact_pixels(good_dir):
    directory, images = good_dir
    loaded, report = validate_samples(directory, N)
    assert report.ok, report.summary()
    assert loaded.dtype == np.uint8 and loaded.shape == (N, 28, 28)
    np.testing.assert_array_equal(loaded, images)
    assert len(report.sha256) == 64


def test_hash_depends_on_content(good_dir):
    directory, images = good_dir
    _, before = validate_samples(directory, N)
    Image.fromarray(255 - images[3]).save(directory / "3.png")
    _, after = validate_samples(directory, N)
    assert before.sha256 != after.sha256


def test_missing_and_extra_names_are_listed(good_dir):
    directory, _ = good_dir
    os.remove(directory / "4.png")
    os.remove(directory / "7.png")
    (directory / "12.png").write_bytes((directory / "0.png").read_bytes())
    (directory / "notes.txt").write_text("hi")
    images, report = validate_samples(directory, N)
    assert images is None
    assert codes(report) == {"missing": ["4.png", "7.png"], "extra": ["12.png", "notes.txt"]}


@pytest.mark.parametrize("count", [N - 1, N + 1])
def test_off_by_one_counts(tmp_path, rng, count):
    directory = write_samples(rng.integers(0, 256, (count, 28, 28), dtype=np.uint8), tmp_path / "s")
    _, report = validate_samples(directory, N)
    expected = {"missing": [f"{N - 1}.png"]} if count < N else {"extra": [f"{N}.png"]}
    assert codes(report) == expected


def test_symlink_hardlink_fifo_and_directory_are_rejected(good_dir, tmp_path):
    directory, _ = good_dir
    outside = tmp_path / "outside.png"
    outside.write_bytes((directory / "0.png").read_bytes())
    os.remove(directory / "1.png")
    os.symlink(outside, directory / "1.png")
    os.remove(directory / "2.png")
    os.link(outside, directory / "2.png")
    os.remove(directory / "3.png")
    os.mkfifo(directory / "3.png")
    os.remove(directory / "5.png")
    os.mkdir(directory / "5.png")
    _, report = validate_samples(directory, N)
    assert codes(report) == {"not_regular_file": ["1.png", "3.png", "5.png"], "hard_link": ["2.png"]}
    messages = {p.file: p.message for p in report.problems}
    assert "symbolic link" in messages["1.png"] and "FIFO" in messages["3.png"]


def test_jpeg_named_png_and_garbage(good_dir, rng):
    directory, images = good_dir
    Image.fromarray(images[0]).save(directory / "0.png", format="JPEG")
    (directory / "1.png").write_bytes(b"hello world")
    _, report = validate_samples(directory, N)
    assert codes(report) == {"not_png": ["0.png", "1.png"]}
    assert "JPEG" in next(p.message for p in report.problems if p.file == "0.png")


def _png_with_header(width: int, height: int, idat: bytes) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_png_bomb_is_refused_before_decoding(good_dir):
    directory, _ = good_dir
    # Claims 100000 x 100000 pixels (10 GB decoded) with a tiny compressed payload.
    bomb = _png_with_header(100_000, 100_000, zlib.compress(b"\x00" * 100_000, 9))
    (directory / "0.png").write_bytes(bomb)
    _, report = validate_samples(directory, N)
    assert codes(report) == {"decompression_bomb": ["0.png"]}


def test_oversized_file_is_refused(good_dir):
    directory, _ = good_dir
    with open(directory / "0.png", "wb") as handle:  # sparse: 10 GB claimed, nothing written
        handle.truncate(10 * 1024**3)
    _, report = validate_samples(directory, N)
    assert codes(report) == {"too_large": ["0.png"]}


def test_truncated_png_is_a_decode_error(good_dir):
    directory, _ = good_dir
    data = (directory / "0.png").read_bytes()
    (directory / "0.png").write_bytes(data[: len(data) // 2])
    _, report = validate_samples(directory, N)
    assert codes(report) == {"decode_error": ["0.png"]}


def test_wrong_sizes_and_modes(good_dir, rng):
    directory, images = good_dir
    Image.fromarray(rng.integers(0, 256, (32, 32), dtype=np.uint8)).save(directory / "0.png")
    Image.fromarray(rng.integers(0, 256, (28, 28, 4), dtype=np.uint8), "RGBA").save(directory / "1.png")
    Image.fromarray(images[2]).convert("1").save(directory / "2.png")
    Image.fromarray(rng.integers(0, 65535, (28, 28), dtype=np.uint16)).save(directory / "3.png")
    Image.fromarray(images[4]).convert("P").save(directory / "4.png")
    _, report = validate_samples(directory, N)
    assert codes(report) == {"wrong_size": ["0.png"], "wrong_mode": ["1.png", "2.png", "3.png", "4.png"]}


def test_rgb_with_equal_channels_is_accepted_like_the_course_template(good_dir, rng):
    directory, images = good_dir
    Image.fromarray(np.stack([images[0]] * 3, axis=-1)).save(directory / "0.png")
    colour = np.stack([images[1], images[1], 255 - images[1]], axis=-1)
    Image.fromarray(colour).save(directory / "1.png")
    loaded, report = validate_samples(directory, N)
    assert codes(report) == {"rgb_not_gray": ["1.png"]}
    os.remove(directory / "1.png")
    Image.fromarray(images[1]).save(directory / "1.png")
    loaded, report = validate_samples(directory, N)
    assert report.ok
    np.testing.assert_array_equal(loaded[0], images[0])


def test_every_problem_is_reported_in_one_pass(good_dir):
    directory, _ = good_dir
    os.remove(directory / "0.png")
    (directory / "1.png").write_bytes(b"junk")
    (directory / "extra.png").write_bytes(b"junk")
    _, report = validate_samples(directory, N)
    assert set(report.by_code()) == {"missing", "not_png", "extra"}
    summary = report.summary()
    assert "missing (expected file is missing): 1: 0.png" in summary
    assert "not_png (not a PNG file (no PNG signature)): 1: 1.png" in summary
    assert "extra (unexpected entry (only 0.png ... N-1.png are allowed)): 1: extra.png" in summary


def test_missing_folder_and_file_instead_of_folder(tmp_path):
    _, report = validate_samples(tmp_path / "nope", N)
    assert codes(report) == {"missing_folder": [""]}
    (tmp_path / "file").write_text("x")
    _, report = validate_samples(tmp_path / "file", N)
    assert "not a folder" in report.problems[0].message


def test_report_serialises_with_a_bounded_problem_list(tmp_path):
    (tmp_path / "s").mkdir()
    _, report = validate_samples(tmp_path / "s", 500)
    payload = report.to_dict()
    assert payload["problem_counts"] == {"missing": 500}
    assert len(payload["problems"]) == 100
    assert payload["groups"] == [{"code": "missing", "message": "expected file is missing", "count": 500,
                                  "files": "0–499.png"}]
    assert "500: 0–499.png" in payload["summary"]


@pytest.mark.parametrize("name", ["².png", "٣.png", "０.png", "00.png", "1.png.png", "-1.png"])
def test_names_that_only_look_like_numbers_are_extra(good_dir, name):
    directory, _ = good_dir
    (directory / name).write_bytes((directory / "0.png").read_bytes())
    _, report = validate_samples(directory, N)
    assert codes(report) == {"extra": [name]}


def test_file_lists_are_compressed_into_ranges():
    from evaluator.samples import REPORT_NAMES, describe_files

    names = [f"{i}.png" for i in (*range(2500, 3000), *range(5500, 6000), 7)]
    assert describe_files(names) == "7.png, 2500–2999.png, 5500–5999.png"
    scattered = describe_files([f"{i}.png" for i in range(0, 200, 2)])
    assert scattered.endswith("… 60 more ranges")
    others = describe_files([f"x{i}" for i in range(50)])
    assert others.count(",") == REPORT_NAMES and others.endswith(f"… {50 - REPORT_NAMES} more names")


def test_only_critical_chunks_reach_the_decoder(good_dir):
    """A text chunk that Pillow would refuse (a 10 MB zTXt bomb) is never decoded."""
    directory, images = good_dir
    data = (directory / "0.png").read_bytes()
    text = zlib.compress(b"a" * 10_000_000, 9)
    chunk = struct.pack(">I", len(text) + 6) + b"zTXt" + b"bomb\0\0" + text
    chunk += struct.pack(">I", zlib.crc32(b"zTXt" + b"bomb\0\0" + text))
    (directory / "0.png").write_bytes(data[:33] + chunk + data[33:])
    loaded, report = validate_samples(directory, N)
    assert report.ok and np.array_equal(loaded[0], images[0])


def test_an_unbounded_folder_listing_stops(tmp_path, monkeypatch):
    import evaluator.samples as samples

    monkeypatch.setattr(samples, "MAX_ENTRIES", 50)
    (tmp_path / "s").mkdir()
    for i in range(200):
        (tmp_path / "s" / f"x{i}").touch()
    _, report = validate_samples(tmp_path / "s", 10)
    assert "too_many_entries" in report.by_code()


def test_background_validation_answers_what_validation_in_process_does(good_dir, monkeypatch):
    import evaluator.samples as samples

    directory, images = good_dir
    expected = validate_samples(directory, N)
    os.remove(directory / "5.png")
    (directory / "extra.txt").write_text("x")
    broken = validate_samples(directory, N)

    def not_here(*args, **kwargs):
        raise AssertionError("validated in the calling process, not in the child")

    monkeypatch.setattr(samples, "validate_samples", not_here)  # the child imports its own
    loaded, report = samples.BackgroundValidation(directory, N).result()
    assert loaded is None and report == broken[1]
    Image.fromarray(images[5]).save(directory / "5.png")
    os.remove(directory / "extra.txt")
    told = []
    loaded, report = samples.BackgroundValidation(directory, N).result(progress=told.append)
    np.testing.assert_array_equal(loaded, images)
    assert report == expected[1] and told == [N]


@pytest.mark.parametrize("child", ["import sys; sys.exit(3)",  # dies
                                   "import sys; sys.stdout.buffer.write(b'\\x00' * 8 + b'junk')",  # garbles
                                   "import os, sys; sys.stdout.buffer.write((2).to_bytes(8, 'big') + b'{}')"])
def test_background_validation_falls_back_to_this_process(good_dir, monkeypatch, child):
    import evaluator.samples as samples

    directory, images = good_dir
    monkeypatch.setattr(samples, "_CHILD_CODE", child)
    loaded, report = samples.BackgroundValidation(directory, N).result()
    np.testing.assert_array_equal(loaded, images)
    assert report == validate_samples(directory, N)[1]


def test_background_validation_without_a_process_validates_here(good_dir, monkeypatch):
    import evaluator.samples as samples

    directory, images = good_dir
    monkeypatch.setattr("sys.executable", str(directory / "no-such-python"))
    loaded, report = samples.BackgroundValidation(directory, N).result()
    np.testing.assert_array_equal(loaded, images)
    assert report.ok


def test_background_validation_imports_nothing_from_the_current_folder(good_dir, tmp_path, monkeypatch):
    """A `json.py` where `evaluate` is run (a team's folder, say) is never imported by the child."""
    import evaluator.samples as samples

    directory, images = good_dir
    planted = tmp_path / "cwd"
    planted.mkdir()
    (planted / "json.py").write_text(f"open({str(tmp_path / 'imported')!r}, 'w').write('yes')\n")
    monkeypatch.chdir(planted)
    monkeypatch.setattr(samples, "validate_samples", None)  # a fallback here would fail: the child must answer
    loaded, report = samples.BackgroundValidation(directory, N).result()
    np.testing.assert_array_equal(loaded, images)
    assert report.ok and not (tmp_path / "imported").exists()
