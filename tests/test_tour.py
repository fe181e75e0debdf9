"""docs/tour.md never goes stale: its Python blocks run in order, in one namespace, on a tiny trained run."""

import re
from pathlib import Path

TOUR = Path(__file__).resolve().parent.parent / "docs" / "tour.md"


def python_blocks(text: str) -> list[str]:
    """The bodies of the ```python fenced blocks, in order."""
    return re.findall(r"^```python\n(.*?)^```$", text, flags=re.M | re.S)


def test_tour_code_runs(tiny_run, tmp_path, monkeypatch):
    monkeypatch.setenv("ATTNLAB_TOUR_RUN", str(tiny_run))
    monkeypatch.setenv("ATTNLAB_TOUR_WORK", str(tmp_path))
    monkeypatch.setenv("ATTNLAB_TOUR_SENTENCE", "一二三四")  # in the tiny model's vocabulary
    blocks = python_blocks(TOUR.read_text(encoding="utf-8"))
    assert len(blocks) >= 12
    namespace: dict = {"__name__": "tour"}
    try:
        for number, block in enumerate(blocks, 1):
            code = compile(block, f"{TOUR.name}, python block {number}", "exec")
            exec(code, namespace)
    finally:
        import torch

        torch.set_grad_enabled(True)  # the tour turns gradients off for itself
    assert (tmp_path / "planted-vectors" / "vectors.safetensors").is_file()
    assert namespace["wv"].analogy("man", "king", "woman", topn=1)[0][0] == "queen"


def test_tour_pictures_exist_and_are_small():
    text = TOUR.read_text(encoding="utf-8")
    pictures = re.findall(r"!\[[^\]]*\]\((img/[^)]+)\)", text)
    assert len(pictures) >= 7
    for rel in pictures:
        path = TOUR.parent / rel
        assert path.is_file(), rel
        assert 5_000 < path.stat().st_size < 200_000, rel
        # every embedded picture is drawn by a command shown in the tour
        assert f"--out docs/{rel}" in text, rel
