"""The three drawing styles of the emoji dataset, each turned into 224x224 RGB on white (build time only).

Every style reads original pixels without a text shaper, so a rebuild depends only on the input files
and the Pillow version: Noto's colour bitmaps come straight out of its CBDT table (the GSUB ligature
table resolves sequences), EmojiOne 3 is a folder of PNGs, and Symbola glyphs are rasterised one code
point at a time by Pillow's bundled FreeType.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from mmbench.data.emoji.cldr import VARIATION_SELECTOR_16, cldr_key
from mmbench.errors import DataError

if TYPE_CHECKING:  # heavy build-only dependencies stay out of the installed import path
    from PIL import Image

NOTO_FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
EMOJIONE_PNG_DIR = Path("/usr/share/rubygems-integration/all/gems/gemojione-3.3.0/assets/png")
SYMBOLA_FONT = Path("/usr/share/fonts/truetype/ancient-scripts/Symbola_hint.ttf")

IMAGE_SIZE = 224
MARGIN = 16  # white border around the drawing's bounding box, so every style fills the frame alike
SYMBOLA_RENDER_PX = 256  # rasterise large, then downscale with antialiasing
ZERO_WIDTH_JOINER = "\u200d"


def fit_on_white(rgba: Image.Image) -> Image.Image:
    """Composite on white, crop to the drawn pixels, scale the longer side to fill 224 minus margins."""
    from PIL import Image

    rgba = rgba.convert("RGBA")
    bbox = rgba.getchannel("A").getbbox()
    if bbox is None:
        raise DataError("empty drawing (fully transparent image)")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    rgb = Image.alpha_composite(white, rgba).convert("RGB").crop(bbox)
    inner = IMAGE_SIZE - 2 * MARGIN
    scale = inner / max(rgb.size)
    size = (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale)))
    rgb = rgb.resize(size, Image.Resampling.BICUBIC)
    canvas = Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), (255, 255, 255))
    canvas.paste(rgb, ((IMAGE_SIZE - size[0]) // 2, (IMAGE_SIZE - size[1]) // 2))
    return canvas


class NotoColorEmoji:
    """Noto Color Emoji's bitmaps, looked up through cmap and the font's ligature table."""

    style = "noto"

    def __init__(self, font_path: Path = NOTO_FONT) -> None:
        from fontTools.ttLib import TTFont

        if not font_path.is_file():
            raise DataError(f"{font_path}: Noto Color Emoji not found (apt-get install fonts-noto-color-emoji)")
        self.path = font_path
        font = TTFont(font_path)
        self._cmap = font.getBestCmap()
        self._strike = font["CBDT"].strikeData[0]
        self._ligatures: dict[tuple[str, ...], str] = {}
        for lookup in font["GSUB"].table.LookupList.Lookup:
            if lookup.LookupType != 4:
                continue
            for subtable in lookup.SubTable:
                for first, ligatures in sorted(subtable.ligatures.items()):
                    for ligature in ligatures:
                        self._ligatures.setdefault((first, *ligature.Component), ligature.LigGlyph)

    def glyph(self, sequence: str) -> str | None:
        """The one glyph that draws ``sequence``, or None (U+FE0F has no glyph and is skipped, as shapers do)."""
        code_points = [ord(ch) for ch in cldr_key(sequence)]
        if not code_points or any(cp not in self._cmap for cp in code_points):
            return None
        glyphs = tuple(self._cmap[cp] for cp in code_points)
        name = glyphs[0] if len(glyphs) == 1 else self._ligatures.get(glyphs)
        return name if name is not None and name in self._strike else None

    def draws(self, sequence: str) -> bool:
        return self.glyph(sequence) is not None

    def image(self, sequence: str) -> Image.Image:
        from PIL import Image

        name = self.glyph(sequence)
        if name is None:
            raise DataError(f"{self.path}: no single glyph for {sequence!r}")
        bitmap = self._strike[name]
        bitmap.decompile()
        with Image.open(io.BytesIO(bitmap.imageData)) as png:
            return fit_on_white(png)


class EmojiOne:
    """EmojiOne 3 PNGs (64x64), matched to CLDR keys by file name."""

    style = "emojione"

    def __init__(self, png_dir: Path = EMOJIONE_PNG_DIR) -> None:
        if not png_dir.is_dir():
            raise DataError(f"{png_dir}: EmojiOne PNGs not found (apt-get install ruby-gemojione)")
        self.path = png_dir
        self._files: dict[str, Path] = {}
        for path in sorted(png_dir.glob("*.png")):
            try:
                sequence = "".join(chr(int(cp, 16)) for cp in path.stem.split("-"))
            except ValueError as exc:
                raise DataError(f"{path}: file name is not a code point sequence") from exc
            self._files[cldr_key(sequence)] = path

    def match(self, keys: Iterable[str]) -> dict[str, Path]:
        """CLDR key -> PNG. Some ZWJ sequences are stored without their U+200D; those match when unambiguous."""
        keys = set(keys)
        without_zwj: dict[str, list[str]] = {}
        for key in sorted(keys):
            without_zwj.setdefault(key.replace(ZERO_WIDTH_JOINER, ""), []).append(key)
        matched: dict[str, Path] = {}
        for file_key, path in sorted(self._files.items()):
            if file_key in keys:
                matched[file_key] = path
            elif ZERO_WIDTH_JOINER not in file_key and len(without_zwj.get(file_key, [])) == 1:
                matched.setdefault(without_zwj[file_key][0], path)
        return matched

    @staticmethod
    def image(path: Path) -> Image.Image:
        from PIL import Image

        try:
            with Image.open(path) as png:
                return fit_on_white(png)
        except OSError as exc:
            raise DataError(f"{path}: cannot read PNG ({exc})") from exc


class Symbola:
    """Symbola's monochrome outlines, single code points only (it has no ligatures for sequences)."""

    style = "symbola"

    def __init__(self, font_path: Path = SYMBOLA_FONT) -> None:
        from fontTools.ttLib import TTFont
        from PIL import ImageFont

        if not font_path.is_file():
            raise DataError(f"{font_path}: Symbola not found (apt-get install fonts-symbola)")
        self.path = font_path
        self._ttfont = TTFont(font_path)
        self._cmap = self._ttfont.getBestCmap()
        self._font = ImageFont.truetype(
            str(font_path), SYMBOLA_RENDER_PX, layout_engine=ImageFont.Layout.BASIC
        )

    def draws(self, sequence: str) -> bool:
        key = cldr_key(sequence)
        if len(key) != 1 or ord(key) not in self._cmap:
            return False
        # Some code points map to an empty placeholder glyph.
        return self._ttfont["glyf"][self._cmap[ord(key)]].numberOfContours != 0

    def image(self, sequence: str) -> Image.Image:
        from PIL import Image, ImageDraw

        char = sequence.replace(VARIATION_SELECTOR_16, "")
        left, top, right, bottom = self._font.getbbox(char)
        if right <= left or bottom <= top:
            raise DataError(f"{self.path}: glyph for U+{ord(char):04X} is empty")
        ink = Image.new("L", (right - left, bottom - top), 0)
        ImageDraw.Draw(ink).text((-left, -top), char, fill=255, font=self._font)
        rgba = Image.new("RGBA", ink.size, (0, 0, 0, 0))
        rgba.putalpha(ink)
        return fit_on_white(rgba)
