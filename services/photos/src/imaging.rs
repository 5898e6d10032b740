//! Turning uploaded bytes into what is stored: the format detected from the bytes, a
//! decode under dimension and allocation limits (a small file that claims 60000×60000
//! pixels is refused before any pixel buffer exists), the EXIF orientation applied, then
//! a re-encode from pixels, so no EXIF/GPS/XMP metadata can survive, and a thumbnail.
//! CPU-bound: callers run it on the blocking pool (see `Processor`).

use image::codecs::gif::GifEncoder;
use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::codecs::webp::WebPEncoder;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};
use std::io::Cursor;

/// Longest side of a thumbnail.
pub const THUMBNAIL_SIDE: u32 = 320;

/// Why bytes could not become a photo.
#[derive(Debug, thiserror::Error)]
pub enum ImagingError {
    /// Not JPEG, PNG, GIF or WebP (whatever the name or declared type says).
    #[error("not a JPEG, PNG, GIF or WebP image")]
    Unsupported,
    /// More pixels or memory than allowed.
    #[error("the image is too large: {0}")]
    TooLarge(String),
    /// A supported format, but broken.
    #[error("the image cannot be decoded: {0}")]
    Corrupt(#[source] image::ImageError),
    /// Encoding failed (a bug, not the client's fault).
    #[error("the image cannot be encoded")]
    Encode(#[source] image::ImageError),
}

/// The bounds of a decode.
#[derive(Debug, Clone, Copy)]
pub struct DecodeLimits {
    /// Largest width or height in pixels.
    pub max_side: u32,
    /// Largest allocation the decoder may make, in bytes.
    pub max_alloc: u64,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        // 8192² RGBA is 256 MiB: any real photo fits, a pixel bomb does not.
        Self {
            max_side: 8192,
            max_alloc: 512 * 1024 * 1024,
        }
    }
}

/// A re-encoded image and its thumbnail.
#[derive(Debug)]
pub struct Processed {
    /// The stored bytes.
    pub content: Vec<u8>,
    /// The thumbnail's bytes (same format).
    pub thumbnail: Vec<u8>,
    /// `image/jpeg`, `image/png`, `image/gif` or `image/webp`.
    pub content_type: &'static str,
    /// Pixels, after orientation.
    pub width: u32,
    /// Pixels, after orientation.
    pub height: u32,
    /// How long decoding took (`agora_photos_image_decode_seconds`).
    pub decode_time: std::time::Duration,
}

/// The format of `bytes`, from their signature.
pub fn detect(bytes: &[u8]) -> Result<ImageFormat, ImagingError> {
    match image::guess_format(bytes) {
        Ok(f @ (ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::Gif | ImageFormat::WebP)) => {
            Ok(f)
        }
        _ => Err(ImagingError::Unsupported),
    }
}

fn decode_error(err: image::ImageError) -> ImagingError {
    match err {
        image::ImageError::Limits(limits) => ImagingError::TooLarge(limits.to_string()),
        other => ImagingError::Corrupt(other),
    }
}

/// Decodes, orients, strips and re-encodes `bytes`, and makes the thumbnail.
pub fn process(bytes: &[u8], limits: DecodeLimits) -> Result<Processed, ImagingError> {
    let format = detect(bytes)?;
    let decoding = tracing::info_span!("image.decode", image.format = content_type(format));
    let started = std::time::Instant::now();
    let entered = decoding.enter();
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut bounds = Limits::default();
    bounds.max_image_width = Some(limits.max_side);
    bounds.max_image_height = Some(limits.max_side);
    bounds.max_alloc = Some(limits.max_alloc);
    reader.limits(bounds);
    let mut decoder = reader.into_decoder().map_err(decode_error)?;
    let orientation = decoder.orientation().map_err(decode_error)?;
    let mut image = DynamicImage::from_decoder(decoder).map_err(decode_error)?;
    image.apply_orientation(orientation);
    drop(entered);
    let decode_time = started.elapsed();
    let _encoding = tracing::info_span!("image.encode").entered();
    let thumbnail = if image.width().max(image.height()) > THUMBNAIL_SIDE {
        image.thumbnail(THUMBNAIL_SIDE, THUMBNAIL_SIDE)
    } else {
        image.clone()
    };
    Ok(Processed {
        content: encode(&image, format)?,
        thumbnail: encode(&thumbnail, format)?,
        content_type: content_type(format),
        width: image.width(),
        height: image.height(),
        decode_time,
    })
}

/// The media type of a supported format.
pub fn content_type(format: ImageFormat) -> &'static str {
    match format {
        ImageFormat::Png => "image/png",
        ImageFormat::Gif => "image/gif",
        ImageFormat::WebP => "image/webp",
        _ => "image/jpeg",
    }
}

/// Encodes pixels only: none of these encoders is given any metadata to write.
fn encode(image: &DynamicImage, format: ImageFormat) -> Result<Vec<u8>, ImagingError> {
    let mut out = Vec::new();
    let result = match format {
        // JPEG has no alpha channel.
        ImageFormat::Jpeg => DynamicImage::ImageRgb8(image.to_rgb8())
            .write_with_encoder(JpegEncoder::new_with_quality(&mut out, 85)),
        ImageFormat::Png => image.write_with_encoder(PngEncoder::new(&mut out)),
        // The first frame: animation is not kept.
        ImageFormat::Gif => {
            let frame = image::Frame::new(image.to_rgba8());
            GifEncoder::new(&mut out).encode_frames(std::iter::once(frame))
        }
        // The only WebP encoder in `image` is lossless.
        _ => DynamicImage::ImageRgba8(image.to_rgba8())
            .write_with_encoder(WebPEncoder::new_lossless(&mut out)),
    };
    result.map_err(ImagingError::Encode)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage};

    fn jpeg(width: u32, height: u32) -> Vec<u8> {
        let img = RgbImage::from_fn(width, height, |x, y| {
            Rgb([(x % 256) as u8, (y % 256) as u8, 128])
        });
        let mut out = Vec::new();
        DynamicImage::ImageRgb8(img)
            .write_with_encoder(JpegEncoder::new_with_quality(&mut out, 90))
            .unwrap();
        out
    }

    /// An EXIF APP1 segment: orientation 6 (rotate 90° clockwise) and a GPS IFD with a
    /// latitude reference, little-endian TIFF.
    fn exif_segment() -> Vec<u8> {
        let mut tiff: Vec<u8> = b"II*\0".to_vec();
        tiff.extend(8u32.to_le_bytes()); // IFD0 at 8
        // IFD0: 2 entries (orientation, GPS pointer), then next-IFD 0.
        tiff.extend(2u16.to_le_bytes());
        tiff.extend(0x0112u16.to_le_bytes());
        tiff.extend(3u16.to_le_bytes());
        tiff.extend(1u32.to_le_bytes());
        tiff.extend(6u32.to_le_bytes());
        let gps_at = 8 + 2 + 2 * 12 + 4;
        tiff.extend(0x8825u16.to_le_bytes());
        tiff.extend(4u16.to_le_bytes());
        tiff.extend(1u32.to_le_bytes());
        tiff.extend((gps_at as u32).to_le_bytes());
        tiff.extend(0u32.to_le_bytes());
        // GPS IFD: GPSLatitudeRef = "N".
        tiff.extend(1u16.to_le_bytes());
        tiff.extend(0x0001u16.to_le_bytes());
        tiff.extend(2u16.to_le_bytes());
        tiff.extend(2u32.to_le_bytes());
        tiff.extend(*b"N\0\0\0");
        tiff.extend(0u32.to_le_bytes());
        let mut payload = b"Exif\0\0".to_vec();
        payload.extend(tiff);
        let mut segment = vec![0xFF, 0xE1];
        segment.extend(((payload.len() + 2) as u16).to_be_bytes());
        segment.extend(payload);
        segment
    }

    #[test]
    fn orientation_is_applied_and_metadata_does_not_survive() {
        let plain = jpeg(40, 20);
        let mut tagged = plain[..2].to_vec(); // SOI
        tagged.extend(exif_segment());
        tagged.extend(&plain[2..]);
        assert!(tagged.windows(6).any(|w| w == b"Exif\0\0"));
        let out = process(&tagged, DecodeLimits::default()).unwrap();
        assert_eq!(
            (out.width, out.height),
            (20, 40),
            "rotated by the EXIF orientation"
        );
        assert_eq!(out.content_type, "image/jpeg");
        for bytes in [&out.content, &out.thumbnail] {
            assert!(!bytes.windows(4).any(|w| w == b"Exif"));
            assert!(!bytes.windows(4).any(|w| w == b"II*\0"));
            assert_eq!(detect(bytes).unwrap(), ImageFormat::Jpeg);
        }
    }

    #[test]
    fn thumbnails_fit_in_320_pixels() {
        let out = process(&jpeg(1000, 500), DecodeLimits::default()).unwrap();
        let thumb = image::load_from_memory(&out.thumbnail).unwrap();
        assert_eq!((thumb.width(), thumb.height()), (320, 160));
        let small = process(&jpeg(100, 50), DecodeLimits::default()).unwrap();
        let thumb = image::load_from_memory(&small.thumbnail).unwrap();
        assert_eq!((thumb.width(), thumb.height()), (100, 50), "never upscaled");
    }

    #[test]
    fn every_supported_format_round_trips_and_others_are_refused() {
        let img = DynamicImage::ImageRgba8(image::RgbaImage::from_pixel(
            30,
            10,
            image::Rgba([10, 200, 30, 255]),
        ));
        for (format, mime) in [
            (ImageFormat::Png, "image/png"),
            (ImageFormat::Gif, "image/gif"),
            (ImageFormat::WebP, "image/webp"),
        ] {
            let mut bytes = Vec::new();
            img.write_to(&mut Cursor::new(&mut bytes), format).unwrap();
            let out = process(&bytes, DecodeLimits::default()).unwrap();
            assert_eq!(out.content_type, mime);
            assert_eq!((out.width, out.height), (30, 10));
            assert_eq!(detect(&out.content).unwrap(), format);
        }
        assert!(matches!(
            process(
                b"GIF87a\x01\0\x01\0\0\0\0 truncated",
                DecodeLimits::default()
            ),
            Err(ImagingError::Corrupt(_))
        ));
        assert!(matches!(
            process(b"%PDF-1.7 hello", DecodeLimits::default()),
            Err(ImagingError::Unsupported)
        ));
    }
}
