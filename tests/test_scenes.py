"""Generated scene data: the dSprites-like factor grid and images, Multi-dSprites-like scenes and their masks,
and the scene sets by name."""
import numpy as np
import pytest

from vaekit.config import DataConfig
from vaekit.data import load_data
from vaekit.data.scenes import factor_grid, generate, load_scene_split, render_dsprites
from vaekit.data.scenes import sprites
from vaekit.data.scenes.multi import VARIANTS


def test_the_factor_grid_is_every_combination_once_in_the_spec_s_order():
    grid = factor_grid()
    assert grid.shape == (737_280, 6) and len(np.unique(grid, axis=0)) == 737_280
    assert grid.max(0).tolist() == [0, 2, 5, 39, 31, 31]
    np.testing.assert_array_equal(grid[:3], [[0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 2]])  # posY fastest
    np.testing.assert_array_equal(grid[32], [0, 0, 0, 0, 1, 0])  # then posX
    np.testing.assert_array_equal(grid[32 * 32 * 40 * 6], [0, 1, 0, 0, 0, 0])  # shape slowest of the varying
    assert sprites.ORIENTATIONS[0] == 0 and sprites.ORIENTATIONS[-1] == pytest.approx(2 * np.pi)
    np.testing.assert_allclose(sprites.SCALES, np.linspace(0.5, 1, 6))


def test_sprites_are_binary_whole_and_move_with_their_factors():
    rows = np.random.default_rng(0).integers(0, 737_280, 400)
    f = factor_grid(rows)
    ims = render_dsprites(f)
    assert set(np.unique(ims)) == {0, 255} and (ims.reshape(400, -1).max(1) == 255).all()
    assert not ims[:, [0, -1], :].any() and not ims[:, :, [0, -1]].any()  # never cut off by the border
    # the centroid follows posX (columns) and posY (rows); the area grows with scale
    on = ims > 0
    cols = (on * np.arange(64)[None, None, :]).sum((1, 2)) / on.sum((1, 2))
    rws = (on * np.arange(64)[None, :, None]).sum((1, 2)) / on.sum((1, 2))
    assert np.corrcoef(cols, f[:, 4])[0, 1] > 0.99 and np.corrcoef(rws, f[:, 5])[0, 1] > 0.99
    base = np.array([[0, s, 0, 0, 16, 16] for s in range(3)] * 2)
    base[3:, 2] = 5
    area = (render_dsprites(base) > 0).sum((1, 2))
    assert (area[3:] > 3 * area[:3]).all()  # scale 1 against scale 0.5: 4 times the area
    turned = base[:1].copy()
    turned[0, 3] = 5  # a square turned by 45 degrees is another image of the same area
    a, b = render_dsprites(np.concatenate([base[:1], turned]))
    assert (a != b).any() and abs(int((a > 0).sum()) - int((b > 0).sum())) < 0.1 * (a > 0).sum()


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_scenes_masks_cover_every_pixel_once_and_follow_the_visible_sprites(variant):
    s = generate(variant, 300, seed=3)
    lo, hi, channels = VARIANTS[variant]
    assert s.images.shape == (300, channels, 64, 64) and lo <= s.counts.min() and s.counts.max() <= hi
    masks = s.masks(hi + 1)
    assert masks.shape == (300, hi + 1, 64, 64) and (masks.sum(1) == 1).all()
    for i in range(0, 300, 7):
        img = s.images[i].astype(int)
        background = img[:, s.segmentation[i] == 0]
        assert (background == background[:, :1]).all()  # one background colour, wherever no sprite is
        for j, obj in enumerate(s.objects[i], 1):
            pixels = img[:, s.segmentation[i] == j]
            if obj["visibility"] > 0:  # an object's visible pixels hold its colour
                np.testing.assert_array_equal(pixels, np.round(np.array(obj["colour"]) * 255)[:, None].repeat(
                    pixels.shape[1], 1))
            else:
                assert pixels.size == 0
        assert s.visible[i] == len(np.unique(s.segmentation[i])) - 1
    if variant == "binarized":
        np.testing.assert_array_equal(s.images[:, 0] > 0, s.segmentation > 0)
    assert np.mean([o["visibility"] for objs in s.objects for o in objs]) > 0.7  # occlusion, but not everywhere


def test_scenes_are_the_same_however_they_are_generated():
    whole = generate("colored-on-colored", 40, seed=1)
    alone = generate("colored-on-colored", 5, seed=1, first=20, chunk=2)
    np.testing.assert_array_equal(whole.images[20:25], alone.images)
    np.testing.assert_array_equal(whole.segmentation[20:25], alone.segmentation)
    other = generate("colored-on-grayscale", 40, seed=1)
    assert not np.array_equal(whole.segmentation, other.segmentation)  # each variant has its own scenes


def test_scene_sets_load_by_name_with_disjoint_splits():
    d = load_data(DataConfig(source="dsprites", limit=2000))
    assert d.shape == (1, 64, 64) and d.classes == ["square", "ellipse", "heart"]
    assert set(np.unique(d.train.y)) == {0, 1, 2}  # a prefix mixes the shapes
    tr, te = load_scene_split("dsprites", "train", 3000), load_scene_split("dsprites", "test", 3000)
    seen = {tuple(r) for r in tr.factors}
    assert not any(tuple(r) in seen for r in te.factors)
    np.testing.assert_array_equal(tr.images, render_dsprites(tr.factors)[:, None])
    m = load_data(DataConfig(source="multi-dsprites-colored-on-grayscale", limit=100))
    assert m.shape == (3, 64, 64) and m.train.y.max() <= 5
