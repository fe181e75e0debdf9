"""A matrix is a change of coordinates; a non-linear map is not. Row vectors, as the model's code has them
(x @ W, nn.Linear computes x Wᵀ): v' = v M = v_1·M[0] + v_2·M[1], so row i of M is old axis e_i written in
the new coordinates. Such a map keeps straight lines straight, parallel lines parallel, and ratios along a
line (the midpoint goes to the midpoint); a bias (an affine map) keeps all three too.

Part 1, in 2-D: a grid, the axes and a vector mapped by M, against the quadratic map
f(x, y) = (x² − y², 2xy), whose two output coordinates are quadratic forms of (x, y) (the complex square).

Part 2, the same on a trained model: a one-hot row times the embedding matrix is that piece's row; the
first encoder layer's Q, K and V projections (affine: `in_proj`) map that row to new coordinates, and a
grid in the plane of two pieces' rows stays a flat, evenly spaced grid under them, while the same layer's
feed-forward network (ReLU between two linear maps) bends it.

Shape letters: V vocabulary, D model width, N points.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from attnlab.errors import AttnlabError
from attnlab.experiments.results import Results
from attnlab.translate.pytorch import Translator
from attnlab.viz.embeddings import pca_2d
from attnlab.viz.figure import cjk, new_figure, save

M = np.array([[1.5, 0.5],
              [-0.5, 1.0]])  # rows: where e1 and e2 go
GRID = np.linspace(0.0, 2.0, 5)  # the grid lines x = c and y = c
WORDS = ("美", "女")  # the pieces whose rows span the plane of part 2


def linear(points: np.ndarray) -> np.ndarray:
    """(N, 2) row vectors times M."""
    return points @ M


def quadratic(points: np.ndarray) -> np.ndarray:
    """(N, 2) -> (x² − y², 2xy): each output a quadratic form vᵀQv of the input."""
    x, y = points[:, 0], points[:, 1]
    return np.stack([x * x - y * y, 2 * x * y], axis=1)


def kept(f, points_a: np.ndarray, points_b: np.ndarray) -> dict[str, float]:
    """What a map keeps, measured: the angle (degrees) between the images of two parallel segments, and where
    the midpoint of a segment lands along its image (0.5: ratios kept)."""
    (a0, a1), (b0, b1) = f(points_a), f(points_b)
    da, db = a1 - a0, b1 - b0
    angle = math.degrees(abs(math.atan2(da[0] * db[1] - da[1] * db[0], da @ db)))
    mid = f(((points_a[0] + points_a[1]) / 2)[None])[0]
    ratio = float(np.linalg.norm(mid - a0) / np.linalg.norm(a1 - a0))
    return {"parallel_angle_deg": round(angle, 3), "midpoint_ratio": round(ratio, 4)}


def _grid_lines(n: int = 60) -> list[np.ndarray]:
    t = np.linspace(GRID[0], GRID[-1], n)
    return [np.stack([np.full_like(t, c), t], 1) for c in GRID] + [np.stack([t, np.full_like(t, c)], 1) for c in GRID]


def plot_2d(out: Path) -> Path:
    fig = new_figure(13, 4.4)
    ax_old, ax_lin, ax_quad = fig.subplots(1, 3)
    v = np.array([1.0, 2.0])
    for ax, f, title in ((ax_old, lambda p: p, "the grid, e1, e2 and v = (1, 2)"),
                         (ax_lin, linear, "v ↦ v M: rows of M = images of e1, e2"),
                         (ax_quad, quadratic, "(x, y) ↦ (x² − y², 2xy): quadratic")):
        for line in _grid_lines():
            img = f(line)
            ax.plot(img[:, 0], img[:, 1], color="lightsteelblue", lw=1)
        for k, (color, name) in enumerate((("crimson", "e1"), ("seagreen", "e2"))):
            head = f(np.eye(2)[k][None])[0]
            ax.annotate("", head, f(np.zeros((1, 2)))[0], arrowprops=dict(arrowstyle="->", color=color, lw=2))
            ax.text(*head, f" {name}→{np.round(head, 2).tolist()}" if f is linear else f" {name}", color=color, fontsize=8)
        end = f(v[None])[0]
        ax.annotate("", end, f(np.zeros((1, 2)))[0], arrowprops=dict(arrowstyle="->", color="black", lw=2))
        ax.text(*end, " v", fontsize=9)
        seg = np.array([[0.5, 0.5], [1.5, 0.5]])
        for shift, style in ((0.0, "-"), (1.0, "--")):
            img = f(np.linspace(seg[0] + [0, shift], seg[1] + [0, shift], 30))
            ax.plot(img[:, 0], img[:, 1], style, color="darkorange", lw=2)
        mid = f(((seg[0] + seg[1]) / 2)[None])[0]
        ax.plot(*mid, "o", color="darkorange")
        ax.set_aspect("equal")
        ax.set_title(title, fontsize=10, **cjk())
    ax_lin.plot([M[0][0], M[0][0] + 2 * M[1][0]], [M[0][1], M[0][1] + 2 * M[1][1]], "k:", lw=1)  # v M = row 1 + 2·row 2
    save(fig, out)
    return out


def model_part(translator: Translator, words=WORDS) -> tuple[dict, dict[str, np.ndarray]]:
    """Numbers of part 2, and the 2-D views of a grid in the plane of two rows (its images under Q, K, V, FFN)."""
    model, tok = translator.model, translator.tokenizer
    ids = []
    for w in words:
        piece_ids = tok.encode_src([w])[0]
        pieces = [i for i in piece_ids if tok.src.id_to_piece(i).replace("▁", "")]
        if len(pieces) != 1:
            raise AttnlabError(f"{w!r} is not one piece of this model's vocabulary ({tok.src_pieces(piece_ids)})")
        ids.append(pieces[0])
    E = model.src_embed.weight.detach()  # (V,D)
    V, D = E.shape
    one_hot = F.one_hot(torch.tensor(ids), V).to(E.dtype)  # (2,V)
    rows = one_hot @ E  # (2,D)
    layer = model.encoder[0]
    x = rows * math.sqrt(D)  # as the model scales them
    h = layer.res_attn.norm(x).detach() if layer.res_attn.norm_first else x  # what the projections read
    w_q, w_k, w_v = layer.self_attn.in_proj.weight.detach().chunk(3)  # (D,D) each, nn.Linear's (out, in)
    b_q, b_k, b_v = layer.self_attn.in_proj.bias.detach().chunk(3)
    maps = {"Q": (w_q.T, b_q), "K": (w_k.T, b_k), "V": (w_v.T, b_v)}  # row convention: h @ M + b
    numbers = {"words": list(words), "ids": ids,
               "one_hot_times_E_minus_row": (rows - E[ids]).abs().max().item()}
    a, b = h[0], h[1]
    s, t = np.meshgrid(np.linspace(-1, 1, 9), np.linspace(-1, 1, 9))
    coeff = torch.tensor(np.stack([s.ravel(), t.ravel()], 1), dtype=h.dtype)  # (N,2)
    plane = coeff[:, :1] * a + coeff[:, 1:] * b  # (N,D): the grid s·a + t·b
    views = {"plane": coeff.numpy()}
    for name, (m, bias) in maps.items():
        sv = torch.linalg.svdvals(m)
        images = plane @ m + bias  # (N,D)
        mid = ((a + b) / 2) @ m + bias
        numbers[name] = {
            "row_sum_check": ((a @ m) - sum(a[j] * m[j] for j in range(D))).abs().max().item(),
            "singular_max": sv[0].item(), "singular_min": sv[-1].item(), "condition": (sv[0] / sv[-1]).item(),
            "midpoint_error": ((mid - (a @ m + b @ m) / 2 - bias).norm() / ((a - b) @ m).norm()).item(),
            "off_plane_share": _off_plane(images.numpy())}
        views[name] = pca_2d(images.numpy())[0]
    ffn = layer.ffn
    with torch.no_grad():
        images = ffn(plane)  # (N,D)
        mid = ffn(((a + b) / 2)[None])[0]
        ends = ffn(torch.stack([a, b]))
    numbers["FFN"] = {"midpoint_error": ((mid - ends.mean(0)).norm() / (ends[0] - ends[1]).norm()).item(),
                      "off_plane_share": _off_plane(images.numpy())}
    views["FFN"] = pca_2d(images.numpy())[0]
    return numbers, views


def _off_plane(points: np.ndarray) -> float:
    """Share of the points' variance outside their best 2-D plane: 0 for the image of a plane under an affine map."""
    centred = points - points.mean(0)
    sv = np.linalg.svd(centred, compute_uv=False) ** 2
    return float(sv[2:].sum() / sv.sum())


def plot_model(views: dict[str, np.ndarray], words, out: Path) -> Path:
    fig = new_figure(15, 3.6)
    axes = fig.subplots(1, 5)
    n = int(round(math.sqrt(len(views["plane"]))))
    titles = {"plane": f"s·{words[0]} + t·{words[1]} (normed rows)", "Q": "its image under Q (PCA)",
              "K": "under K (PCA)", "V": "under V (PCA)", "FFN": "under the FFN (PCA): bent"}
    for ax, (name, xy) in zip(axes, views.items()):
        grid = xy.reshape(n, n, 2)
        for k in range(n):
            ax.plot(grid[k, :, 0], grid[k, :, 1], color="steelblue", lw=1)
            ax.plot(grid[:, k, 0], grid[:, k, 1], color="darkorange", lw=1)
        ax.plot(*grid[0, 0], "ko", ms=4)
        ax.set_aspect("equal", adjustable="datalim")
        ax.set_title(titles[name], fontsize=9, **cjk())
        ax.tick_params(labelsize=7)
    save(fig, out)
    return out


def run(model_dir: Path, out_dir: Path, command: str, words=WORDS) -> Results:
    seg_a, seg_b = np.array([[0.5, 0.5], [1.5, 0.5]]), np.array([[0.5, 1.5], [1.5, 1.5]])
    rows = [{"map": "v M (linear)", **kept(linear, seg_a, seg_b)},
            {"map": "(x² − y², 2xy) (quadratic)", **kept(quadratic, seg_a, seg_b)}]
    plot_2d(out_dir / "coordinates-2d.png")
    translator = Translator.load(model_dir)
    numbers, views = model_part(translator, words)
    plot_model(views, list(words), out_dir / "coordinates-model.png")
    for name in ("Q", "K", "V", "FFN"):
        n = numbers[name]
        rows.append({"map": f"{model_dir.name}: layer 1 {name}", "midpoint_error": n["midpoint_error"],
                     "off_plane_share": n["off_plane_share"], "condition": n.get("condition")})
    return Results(
        study="coordinates", command=command,
        title="a matrix is a change of coordinates: what it keeps, and what a non-linear map does not",
        columns=[("map", "map"), ("parallel_angle_deg", "angle between parallel segments' images (°)"),
                 ("midpoint_ratio", "midpoint lands at (0.5: kept)"),
                 ("midpoint_error", "‖f(mid) − mid of f‖ / ‖f(a) − f(b)‖"),
                 ("off_plane_share", "variance off the image's plane"), ("condition", "condition number")],
        rows=rows, pictures=["coordinates-2d.png", "coordinates-model.png"],
        detail={"M": M.tolist(), "model": str(model_dir), "model_numbers": numbers},
        notes=[f"M = {M.tolist()}: row 1 is where e1 goes, row 2 where e2 goes, and v = (1, 2) goes to "
               f"1·row 1 + 2·row 2 = {(np.array([1.0, 2.0]) @ M).tolist()}. The segments are (0.5, 0.5)–(1.5, 0.5) "
               "and the parallel (0.5, 1.5)–(1.5, 1.5).",
               f"Model rows: one-hot × embedding matrix − the row = {numbers['one_hot_times_E_minus_row']:.1g} "
               f"(the product is the lookup). Q, K, V: x W + b of the first encoder layer on the normed rows of "
               f"{' and '.join(words)} (what its projections read); x W equals Σ_j x_j W[j] to "
               f"{max(numbers[k]['row_sum_check'] for k in 'QKV'):.1g}. The plane is the grid s·a + t·b, "
               "s, t in −1..1; its image under an affine map stays in a plane (variance off it ≈ 0), under the "
               "FFN it does not."])
