//! Untrusted image bytes in, pixels out, within limits. A decompression bomb (a few kilobytes
//! that claim a gigapixel) is refused from its header, before anything is allocated.

use std::io::Cursor;

use image::{DynamicImage, ImageFormat, ImageReader};

/// Bounds on an uploaded image.
#[derive(Clone, Copy, Debug)]
pub struct ImageLimits {
    /// The encoded size.
    pub max_bytes: usize,
    /// Each side, as the header declares it.
    pub max_side: u32,
    /// Width × height.
    pub max_pixels: u64,
}

impl ImageLimits {
    /// Camera frames: up to 4K.
    pub const FRAME: Self = Self {
        max_bytes: 20 << 20,
        max_side: 8192,
        max_pixels: 3840 * 2160,
    };
    /// Avatars and other small pictures.
    pub const AVATAR: Self = Self {
        max_bytes: 2 << 20,
        max_side: 4096,
        max_pixels: 4096 * 4096,
    };
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ImageError {
    #[error("The file is empty.")]
    Empty,
    #[error("The file is larger than {max} bytes.")]
    TooLarge { max: usize },
    #[error(
        "Upload a valid image. The file you uploaded was either not an image or a corrupted image."
    )]
    NotAnImage,
    #[error(
        "The image is {width}x{height} pixels; the limit is {max_side} per side and {max_pixels} in all."
    )]
    TooManyPixels {
        width: u32,
        height: u32,
        max_side: u32,
        max_pixels: u64,
    },
}

impl From<ImageError> for civic_core::Error {
    fn from(e: ImageError) -> Self {
        match e {
            ImageError::TooLarge { .. } => civic_core::Error::PayloadTooLarge(e.to_string()),
            _ => civic_core::Error::BadRequest(e.to_string()),
        }
    }
}

/// What an image is, once it has decoded cleanly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Info {
    pub format: ImageFormat,
    pub width: u32,
    pub height: u32,
}

impl Info {
    pub fn extension(&self) -> &'static str {
        self.format
            .extensions_str()
            .first()
            .copied()
            .unwrap_or("bin")
    }
    pub fn content_type(&self) -> &'static str {
        self.format.to_mime_type()
    }
}

/// Decodes the whole image, so a truncated or corrupt file is refused too.
pub fn decode(bytes: &[u8], limits: &ImageLimits) -> Result<(Info, DynamicImage), ImageError> {
    if bytes.is_empty() {
        return Err(ImageError::Empty);
    }
    if bytes.len() > limits.max_bytes {
        return Err(ImageError::TooLarge {
            max: limits.max_bytes,
        });
    }
    let reader = || {
        ImageReader::new(Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|_| ImageError::NotAnImage)
    };
    let probe = reader()?;
    let format = probe.format().ok_or(ImageError::NotAnImage)?;
    // The JPEG decoder fills a cut-off scan with grey; a whole JPEG ends with its EOI marker.
    if format == ImageFormat::Jpeg && !bytes.ends_with(&[0xFF, 0xD9]) {
        return Err(ImageError::NotAnImage);
    }
    let (width, height) = probe
        .into_dimensions()
        .map_err(|_| ImageError::NotAnImage)?;
    if width == 0
        || height == 0
        || width > limits.max_side
        || height > limits.max_side
        || u64::from(width) * u64::from(height) > limits.max_pixels
    {
        return Err(ImageError::TooManyPixels {
            width,
            height,
            max_side: limits.max_side,
            max_pixels: limits.max_pixels,
        });
    }
    let mut reader = reader()?;
    // Decoders allocate beyond the final buffer; bound that as well (RGBA8 plus headroom).
    let mut bounds = image::Limits::default();
    bounds.max_image_width = Some(limits.max_side);
    bounds.max_image_height = Some(limits.max_side);
    bounds.max_alloc = Some(limits.max_pixels * 4 * 2);
    reader.limits(bounds);
    let image = reader.decode().map_err(|_| ImageError::NotAnImage)?;
    Ok((
        Info {
            format,
            width,
            height,
        },
        image,
    ))
}

/// Test data: a valid greyscale PNG of under 100 bytes whose header claims `width`×`height`
/// pixels, i.e. a decompression bomb (signature, IHDR, one tiny IDAT, IEND).
pub fn png_bomb(width: u32, height: u32) -> Vec<u8> {
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
    // zlib: one final stored block holding a single zero byte.
    let idat = [
        0x78, 0x01, 0x01, 0x01, 0x00, 0xFE, 0xFF, 0x00, 0x00, 0x01, 0x00, 0x01,
    ];
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    for (kind, data) in [
        (b"IHDR", &ihdr[..]),
        (b"IDAT", &idat[..]),
        (b"IEND", &[][..]),
    ] {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut chunk = kind.to_vec();
        chunk.extend_from_slice(data);
        out.extend_from_slice(&chunk);
        out.extend_from_slice(&crc32(&chunk).to_be_bytes());
    }
    out
}

/// The CRC-32 (ISO-HDLC) of PNG chunks.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageEncoder, RgbImage};

    fn png(width: u32, height: u32) -> Vec<u8> {
        let mut out = Vec::new();
        let img = RgbImage::from_fn(width, height, |x, y| image::Rgb([x as u8, y as u8, 7]));
        image::codecs::png::PngEncoder::new(&mut out)
            .write_image(&img, width, height, image::ExtendedColorType::Rgb8)
            .unwrap();
        out
    }

    #[test]
    fn a_real_png_decodes() {
        let (info, img) = decode(&png(40, 30), &ImageLimits::AVATAR).unwrap();
        assert_eq!((info.width, info.height, info.extension()), (40, 30, "png"));
        assert_eq!(info.content_type(), "image/png");
        assert_eq!(img.to_rgb8().get_pixel(3, 2).0, [3, 2, 7]);
    }

    #[test]
    fn text_empty_and_truncated_files_are_not_images() {
        assert_eq!(
            decode(b"hello, world", &ImageLimits::AVATAR).unwrap_err(),
            ImageError::NotAnImage
        );
        assert_eq!(
            decode(b"", &ImageLimits::AVATAR).unwrap_err(),
            ImageError::Empty
        );
        let whole = png(64, 64);
        assert_eq!(
            decode(&whole[..whole.len() / 2], &ImageLimits::AVATAR).unwrap_err(),
            ImageError::NotAnImage
        );
    }

    #[test]
    fn a_truncated_jpeg_is_refused() {
        let img = RgbImage::from_fn(64, 48, |x, y| image::Rgb([x as u8, y as u8, 7]));
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new(&mut jpeg)
            .write_image(&img, 64, 48, image::ExtendedColorType::Rgb8)
            .unwrap();
        assert!(decode(&jpeg, &ImageLimits::AVATAR).is_ok());
        assert_eq!(
            decode(&jpeg[..jpeg.len() * 2 / 3], &ImageLimits::AVATAR).unwrap_err(),
            ImageError::NotAnImage
        );
    }

    #[test]
    fn oversize_files_are_refused_before_decoding() {
        let limits = ImageLimits {
            max_bytes: 100,
            ..ImageLimits::AVATAR
        };
        assert_eq!(
            decode(&png(64, 64), &limits).unwrap_err(),
            ImageError::TooLarge { max: 100 }
        );
    }

    #[test]
    fn a_decompression_bomb_is_refused_from_its_header() {
        // A valid 100-byte PNG that claims 20000×20000 pixels.
        let bomb = png_bomb(20_000, 20_000);
        assert!(bomb.len() < 100);
        let err = decode(&bomb, &ImageLimits::AVATAR).unwrap_err();
        assert!(
            matches!(err, ImageError::TooManyPixels { width: 20_000, .. }),
            "{err:?}"
        );
    }
}
