//! Turning uploaded bytes into what is stored: the format detected from the bytes, a
//! decode under dimension and allocation limits (a small file that claims 60000×60000
//! pixels is refused before any pixel buffer exists), the EXIF orientation applied, then
//! a re-encode from pixels, so no EXIF/GPS/XMP metadata can survive, and a thumbnail.
//! CPU-bound: callers run it on the blocking pool (see `Processor`).
//!
//! JPEG, nearly every upload, takes a faster path than the `image` crate's: zune-jpeg's
//! SIMD decoder straight into one pixel buffer, jpeg-encoder's AVX2 encoder with
//! optimised Huffman tables (what `cjpeg -optimize` writes), and the thumbnail resized
//! from the same decoded pixels by fast_image_resize (one decode for both outputs; a
//! DCT-scaled second decode would only add work, since the full image is re-encoded
//! anyway). The other formats go through `image`.

use image::codecs::gif::GifEncoder;
use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::codecs::webp::WebPEncoder;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};
use sha2::{Digest, Sha256};
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
    /// A JPEG that is broken (zune-jpeg's finding).
    #[error("the image cannot be decoded: {0}")]
    CorruptJpeg(#[source] zune_jpeg::errors::DecodeErrors),
    /// Encoding failed (a bug, not the client's fault).
    #[error("the image cannot be encoded")]
    Encode(#[source] image::ImageError),
    /// JPEG encoding failed (a bug, not the client's fault).
    #[error("the image cannot be encoded")]
    EncodeJpeg(#[source] jpeg_encoder::EncodingError),
    /// Resizing failed (a bug, not the client's fault).
    #[error("the thumbnail cannot be made")]
    Resize(#[source] fast_image_resize::ResizeError),
    /// Pixels of a size the decoder did not announce (a bug, not the client's fault).
    #[error("inconsistent pixel buffer: {0}")]
    Inconsistent(&'static str),
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
    /// The SHA-256 of `content`, hex (its storage address), computed here on the
    /// blocking pool rather than on the request's worker.
    pub sha256: String,
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
    let mut processed = if format == ImageFormat::Jpeg {
        jpeg::process(bytes, limits)?
    } else {
        process_with_image(bytes, format, limits)?
    };
    processed.sha256 = agora_keys::to_hex(&Sha256::digest(&processed.content));
    Ok(processed)
}

/// PNG, GIF and WebP through the `image` crate.
fn process_with_image(
    bytes: &[u8],
    format: ImageFormat,
    limits: DecodeLimits,
) -> Result<Processed, ImagingError> {
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
        sha256: String::new(),
    })
}

/// The size of a thumbnail of a `width`×`height` image: the longest side
/// [`THUMBNAIL_SIDE`], the aspect kept, never upscaled, never zero.
pub fn thumbnail_size(width: u32, height: u32) -> (u32, u32) {
    let longest = width.max(height);
    if longest <= THUMBNAIL_SIDE {
        return (width, height);
    }
    let scale = |side: u32| {
        let scaled = (u64::from(side) * u64::from(THUMBNAIL_SIDE) + u64::from(longest) / 2)
            / u64::from(longest);
        (scaled as u32).max(1)
    };
    (scale(width), scale(height))
}

mod jpeg {
    use super::{DecodeLimits, ImagingError, Processed, thumbnail_size};
    use fast_image_resize as fir;
    use image::{DynamicImage, GrayImage, RgbImage, metadata::Orientation};
    use zune_core::bytestream::ZCursor;
    use zune_core::colorspace::ColorSpace;
    use zune_core::options::DecoderOptions;

    /// Quality of every re-encoded JPEG (cjpeg's default too).
    const QUALITY: u8 = 85;

    pub(super) fn process(bytes: &[u8], limits: DecodeLimits) -> Result<Processed, ImagingError> {
        let decoding = tracing::info_span!("image.decode", image.format = "image/jpeg");
        let started = std::time::Instant::now();
        let entered = decoding.enter();
        let image = decode(bytes, limits)?;
        drop(entered);
        let decode_time = started.elapsed();
        let _encoding = tracing::info_span!("image.encode").entered();
        let (width, height) = (image.width(), image.height());
        let (kind, pixel, raw) = match &image {
            DynamicImage::ImageLuma8(gray) => (
                jpeg_encoder::ColorType::Luma,
                fir::PixelType::U8,
                gray.as_raw(),
            ),
            DynamicImage::ImageRgb8(rgb) => (
                jpeg_encoder::ColorType::Rgb,
                fir::PixelType::U8x3,
                rgb.as_raw(),
            ),
            // `decode` makes nothing else.
            _ => return Err(ImagingError::Inconsistent("unexpected pixel layout")),
        };
        let content = encode(raw, width, height, kind)?;
        let (thumb_width, thumb_height) = thumbnail_size(width, height);
        let thumbnail = if (thumb_width, thumb_height) == (width, height) {
            encode(raw, width, height, kind)?
        } else {
            let source = fir::images::ImageRef::new(width, height, raw, pixel)
                .map_err(|_| ImagingError::Inconsistent("thumbnail source"))?;
            let mut small = fir::images::Image::new(thumb_width, thumb_height, pixel);
            fir::Resizer::new()
                .resize(
                    &source,
                    &mut small,
                    &fir::ResizeOptions::new()
                        .resize_alg(fir::ResizeAlg::Convolution(fir::FilterType::CatmullRom)),
                )
                .map_err(ImagingError::Resize)?;
            encode(small.buffer(), thumb_width, thumb_height, kind)?
        };
        Ok(Processed {
            content,
            thumbnail,
            content_type: "image/jpeg",
            width,
            height,
            decode_time,
            sha256: String::new(),
        })
    }

    /// Pixels, oriented: 8-bit gray stays gray, every other colour space becomes RGB.
    fn decode(bytes: &[u8], limits: DecodeLimits) -> Result<DynamicImage, ImagingError> {
        // Sides are checked here, against the limits, for a 413 that names them (the
        // decoder's own check would read as a broken file); a JPEG side fits in 16 bits.
        let options = DecoderOptions::default()
            .set_strict_mode(false)
            .set_max_width(usize::from(u16::MAX))
            .set_max_height(usize::from(u16::MAX));
        let mut decoder = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(bytes), options);
        decoder.decode_headers().map_err(refusal)?;
        let (width, height) = decoder.dimensions().ok_or(ImagingError::Inconsistent(
            "no dimensions after the headers",
        ))?;
        if width.max(height) > limits.max_side as usize {
            return Err(ImagingError::TooLarge(format!(
                "{width}×{height} pixels, more than {} on a side",
                limits.max_side
            )));
        }
        let gray = decoder.input_colorspace() == Some(ColorSpace::Luma);
        let out = if gray {
            ColorSpace::Luma
        } else {
            ColorSpace::RGB
        };
        decoder.set_options(decoder.options().jpeg_set_out_colorspace(out));
        // The one allocation a decode makes, bounded before it is made.
        let needed = width as u64 * height as u64 * out.num_components() as u64;
        if needed > limits.max_alloc {
            return Err(ImagingError::TooLarge(format!(
                "{width}×{height} needs {needed} bytes of pixels, more than {}",
                limits.max_alloc
            )));
        }
        let orientation = decoder
            .exif()
            .and_then(|exif| Orientation::from_exif_chunk(exif))
            .unwrap_or(Orientation::NoTransforms);
        let pixels = decoder.decode().map_err(refusal)?;
        let (width, height) = (width as u32, height as u32);
        let mismatch = || ImagingError::Inconsistent("decoded size");
        let mut image = if gray {
            DynamicImage::ImageLuma8(
                GrayImage::from_raw(width, height, pixels).ok_or_else(mismatch)?,
            )
        } else {
            DynamicImage::ImageRgb8(RgbImage::from_raw(width, height, pixels).ok_or_else(mismatch)?)
        };
        image.apply_orientation(orientation);
        Ok(image)
    }

    /// A decoder's refusal: too large when it says so, corrupt otherwise.
    fn refusal(err: zune_jpeg::errors::DecodeErrors) -> ImagingError {
        match err {
            zune_jpeg::errors::DecodeErrors::LargeDimensions(_) => {
                ImagingError::TooLarge(err.to_string())
            }
            other => ImagingError::CorruptJpeg(other),
        }
    }

    /// Baseline JPEG, 4:2:0, optimised Huffman tables: no metadata is ever given to it.
    fn encode(
        pixels: &[u8],
        width: u32,
        height: u32,
        kind: jpeg_encoder::ColorType,
    ) -> Result<Vec<u8>, ImagingError> {
        let (Ok(w), Ok(h)) = (u16::try_from(width), u16::try_from(height)) else {
            return Err(ImagingError::TooLarge(format!("{width}×{height}")));
        };
        let mut out = Vec::with_capacity(pixels.len() / 8);
        let mut encoder = jpeg_encoder::Encoder::new(&mut out, QUALITY);
        encoder.set_optimized_huffman_tables(true);
        encoder.set_sampling_factor(jpeg_encoder::SamplingFactor::F_2_2);
        encoder
            .encode(pixels, w, h, kind)
            .map_err(ImagingError::EncodeJpeg)?;
        Ok(out)
    }

    #[cfg(test)]
    mod tests {
        use super::super::*;

        /// A JPEG's start of frame rewritten to claim `width`×`height`.
        fn claiming(mut jpeg: Vec<u8>, width: u16, height: u16) -> Vec<u8> {
            let sof = jpeg
                .windows(2)
                .position(|w| w == [0xFF, 0xC0])
                .expect("a baseline JPEG has SOF0");
            // FF C0, length (2), precision (1), height (2), width (2).
            jpeg[sof + 5..sof + 7].copy_from_slice(&height.to_be_bytes());
            jpeg[sof + 7..sof + 9].copy_from_slice(&width.to_be_bytes());
            jpeg
        }

        #[test]
        fn a_jpeg_claiming_too_many_pixels_is_refused_before_any_buffer() {
            let bomb = claiming(tests_support::jpeg(16, 16), 60000, 60000);
            assert!(matches!(
                process(&bomb, DecodeLimits::default()),
                Err(ImagingError::TooLarge(why)) if why.contains("60000")
            ));
            // Within the sides, over the allocation budget.
            let wide = claiming(tests_support::jpeg(16, 16), 8000, 8000);
            let tight = DecodeLimits {
                max_side: 8192,
                max_alloc: 1024 * 1024,
            };
            assert!(matches!(
                process(&wide, tight),
                Err(ImagingError::TooLarge(_))
            ));
        }

        #[test]
        fn gray_jpegs_stay_gray_and_broken_ones_are_refused() {
            let gray = image::GrayImage::from_fn(400, 100, |x, _| image::Luma([(x % 256) as u8]));
            let mut bytes = Vec::new();
            DynamicImage::ImageLuma8(gray)
                .write_with_encoder(JpegEncoder::new_with_quality(&mut bytes, 90))
                .unwrap();
            let out = process(&bytes, DecodeLimits::default()).unwrap();
            let thumb = image::load_from_memory(&out.thumbnail).unwrap();
            assert_eq!((thumb.width(), thumb.height()), (320, 80));
            assert_eq!(thumb.color(), image::ColorType::L8);
            assert_eq!(
                out.sha256,
                agora_keys::to_hex(&Sha256::digest(&out.content))
            );
            let broken = &tests_support::jpeg(50, 50)[..200];
            assert!(matches!(
                process(broken, DecodeLimits::default()),
                Err(ImagingError::CorruptJpeg(_))
            ));
        }
    }
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
mod tests_support {
    use super::*;
    use image::{Rgb, RgbImage};

    /// A small RGB JPEG with a gradient.
    pub fn jpeg(width: u32, height: u32) -> Vec<u8> {
        let img = RgbImage::from_fn(width, height, |x, y| {
            Rgb([(x % 256) as u8, (y % 256) as u8, 128])
        });
        let mut out = Vec::new();
        DynamicImage::ImageRgb8(img)
            .write_with_encoder(JpegEncoder::new_with_quality(&mut out, 90))
            .unwrap();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::jpeg;
    use super::*;

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
