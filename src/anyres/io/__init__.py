"""Reading and writing image files.

This is the only package that knows about uint8, HWC layout, alpha channels, palettes, EXIF orientation and
16-bit files. Everything else in anyres sees float32 tensors of shape (1, C, H, W) with values in [0, 1],
where C is 1 (grayscale) or 3 (RGB); alpha, ICC profile and bit depth travel alongside in :class:`ImageMeta`.

Decoders: Pillow for 8-bit images of any format it knows; pypng for 16-bit colour PNGs (Pillow silently
reduces them to 8 bit); tifffile for 16-bit and floating-point TIFFs (same reason).
"""

from anyres.io.files import as_batch, check_not_input, check_output, check_outputs, expand_inputs, list_images
from anyres.io.reading import (
    DEFAULT_MAX_PIXELS,
    IMAGE_EXTENSIONS,
    INPUT_EXTENSIONS,
    ImageMeta,
    Pixels,
    read_image,
    read_pixels,
)
from anyres.io.writing import Canvas, write_bytes_atomic, write_image

__all__ = [
    "as_batch",
    "IMAGE_EXTENSIONS",
    "INPUT_EXTENSIONS",
    "DEFAULT_MAX_PIXELS",
    "ImageMeta",
    "read_image",
    "read_pixels",
    "Pixels",
    "write_image",
    "Canvas",
    "check_not_input",
    "check_output",
    "check_outputs",
    "list_images",
    "write_bytes_atomic",
    "expand_inputs",
]
