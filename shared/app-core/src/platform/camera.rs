//! Taking photos: the [`Camera`] trait and the desktop camera, a folder of images taken in name
//! order (a webcam's capture folder, or test fixtures), plus the photo picker's file check.
//! Android/iOS builds plug in the camera intent behind the same trait.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::AppError;

/// A photo as the camera or picker returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Photo {
    pub bytes: Vec<u8>,
    pub mime: String,
    pub name: String,
}

/// Takes photos.
pub trait Camera: Send + Sync + std::fmt::Debug {
    fn capture(&self) -> Result<Photo, AppError>;
    fn describe(&self) -> String;
}

/// The desktop camera: the images of a folder, one per capture in name order (a webcam's
/// capture folder, or test fixtures); after the last it starts over.
#[derive(Debug)]
pub struct ImageFolder {
    dir: PathBuf,
    next: Mutex<usize>,
}

impl ImageFolder {
    pub fn new(dir: impl Into<PathBuf>) -> ImageFolder {
        ImageFolder { dir: dir.into(), next: Mutex::new(0) }
    }
}

/// The MIME type of an image file by its first bytes (JPEG, PNG), else `None`.
pub fn image_mime(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else {
        None
    }
}

/// Reads a picked image file (the photo picker), refusing what is not a JPEG or PNG.
pub fn pick_photo(path: &Path) -> Result<Photo, AppError> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let bytes = std::fs::read(path).map_err(AppError::io(path))?;
    let mime = image_mime(&bytes)
        .ok_or_else(|| AppError::Image { name: name.clone(), reason: "not a JPEG or PNG image".into() })?;
    Ok(Photo { bytes, mime: mime.into(), name })
}

impl Camera for ImageFolder {
    fn capture(&self) -> Result<Photo, AppError> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .map_err(|e| AppError::Camera { folder: self.dir.clone(), reason: e.to_string() })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| ["jpg", "jpeg", "png"].contains(&e.to_ascii_lowercase().as_str()))
            })
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(AppError::Camera { folder: self.dir.clone(), reason: "no JPEG/PNG images".into() });
        }
        let mut i = self.next.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let path = &files[*i % files.len()];
        *i += 1;
        pick_photo(path)
    }

    fn describe(&self) -> String {
        format!("图片文件夹 / image folder: {}", self.dir.display())
    }
}
