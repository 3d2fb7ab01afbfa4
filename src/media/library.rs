//! The media directory (`--media-dir`): the only place images are attached from.
//!
//! An image is named by its plain file name in the directory. Names never carry a path, and what
//! a name leads to must stay inside the directory: a symlink to another file in it (or in a
//! subdirectory) is followed, one that leads out is refused, as are directories, devices and
//! FIFOs. The drive gets the resolved path, with no symlink left in it.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::ImageInfo;

/// Why an image name cannot be attached. Messages are for people; the control interface may
/// also tell the kinds apart (e.g. "no such image" from "not allowed").
#[derive(Debug, thiserror::Error)]
pub enum LibraryError {
    #[error("{name:?} is not an image name: {reason} (give the file's name inside the media directory)")]
    BadName { name: String, reason: &'static str },
    #[error("no image {name:?} in {dir}")]
    NotFound { name: String, dir: PathBuf },
    #[error("{name:?} leads outside the media directory {dir} (to {target}): refused")]
    OutsideDirectory { name: String, dir: PathBuf, target: PathBuf },
    #[error("{name:?} in {dir} is not a regular file (a directory, device or FIFO cannot be attached)")]
    NotRegularFile { name: String, dir: PathBuf },
    #[error("media directory {dir}: {source}")]
    Directory { dir: PathBuf, source: io::Error },
    #[error("image {name:?} in {dir}: {source}")]
    Io { name: String, dir: PathBuf, source: io::Error },
}

/// The images of one directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaLibrary {
    dir: PathBuf,
}

impl MediaLibrary {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The directory as configured (not resolved).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every name [`MediaLibrary::resolve`] accepts, sorted, with its size. Entries that cannot
    /// be attached (subdirectories, symlinks leading out, names that are not UTF-8) are left out.
    pub fn list(&self) -> Result<Vec<ImageInfo>, LibraryError> {
        let dir = self.canonical_dir()?;
        let entries = fs::read_dir(&dir).map_err(|source| self.directory_error(source))?;
        let mut images = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| self.directory_error(source))?;
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                tracing::debug!("skipping {:?} in the media directory: not UTF-8", entry.file_name());
                continue;
            };
            match self.resolve_in(&dir, &name) {
                Ok(path) => {
                    let size_bytes = fs::metadata(&path).map(|metadata| metadata.len()).unwrap_or(0);
                    images.push(ImageInfo { name, size_bytes });
                }
                Err(error) => tracing::debug!("not listing {name:?}: {error}"),
            }
        }
        images.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(images)
    }

    /// The absolute path, free of symlinks, of the image called `name`; see the module doc for
    /// what is refused.
    pub fn resolve(&self, name: &str) -> Result<PathBuf, LibraryError> {
        check_name(name)?;
        let dir = self.canonical_dir()?;
        self.resolve_in(&dir, name)
    }

    /// The name an attached image is known by here, from the path the drive holds: the file
    /// itself when it lies in the directory, else the first name (a symlink) that resolves to
    /// it; None for anything else (attached from elsewhere, deleted since).
    pub fn name_of(&self, path: &Path) -> Option<String> {
        let dir = self.canonical_dir().ok()?;
        if path.parent() == Some(dir.as_path()) {
            let name = path.file_name()?.to_str()?;
            if self.resolve_in(&dir, name).is_ok_and(|resolved| resolved == path) {
                return Some(name.to_string());
            }
        }
        let mut names: Vec<String> = fs::read_dir(&dir)
            .ok()?
            .filter_map(Result::ok)
            .filter_map(|entry| entry.file_name().to_str().map(str::to_string))
            .collect();
        names.sort();
        names.into_iter().find(|name| self.resolve_in(&dir, name).is_ok_and(|resolved| resolved == path))
    }

    fn canonical_dir(&self) -> Result<PathBuf, LibraryError> {
        let dir = self.dir.canonicalize().map_err(|source| self.directory_error(source))?;
        if !dir.is_dir() {
            return Err(self.directory_error(io::Error::other("not a directory")));
        }
        Ok(dir)
    }

    /// `name` (already checked) in the canonical directory `dir`.
    fn resolve_in(&self, dir: &Path, name: &str) -> Result<PathBuf, LibraryError> {
        check_name(name)?;
        let not_found = || LibraryError::NotFound { name: name.to_string(), dir: self.dir.clone() };
        let path = dir.join(name);
        match fs::symlink_metadata(&path) {
            Ok(_) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Err(not_found()),
            Err(source) => return Err(self.io_error(name, source)),
        }
        let target = match path.canonicalize() {
            Ok(target) => target,
            // A symlink to nothing.
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Err(not_found()),
            Err(source) => return Err(self.io_error(name, source)),
        };
        // Component-wise: /media-evil does not start with /media.
        if !target.starts_with(dir) || target == dir {
            return Err(LibraryError::OutsideDirectory { name: name.to_string(), dir: self.dir.clone(), target });
        }
        let metadata = fs::metadata(&target).map_err(|source| self.io_error(name, source))?;
        if !metadata.is_file() {
            return Err(LibraryError::NotRegularFile { name: name.to_string(), dir: self.dir.clone() });
        }
        // The kernel strips one trailing newline from what is written to the LUN's `file`.
        if target.to_string_lossy().contains('\n') {
            return Err(LibraryError::BadName { name: name.to_string(), reason: "its path contains a line break" });
        }
        Ok(target)
    }

    fn directory_error(&self, source: io::Error) -> LibraryError {
        LibraryError::Directory { dir: self.dir.clone(), source }
    }

    fn io_error(&self, name: &str, source: io::Error) -> LibraryError {
        LibraryError::Io { name: name.to_string(), dir: self.dir.clone(), source }
    }
}

/// A name is one plain path component: not empty, not `.` or `..`, no `/`, no control
/// characters (NUL cannot be passed to the kernel, a line break would be cut from configfs).
fn check_name(name: &str) -> Result<(), LibraryError> {
    let reason = if name.is_empty() {
        "it is empty"
    } else if name == "." || name == ".." {
        "it names a directory"
    } else if name.contains('/') {
        "it contains `/`"
    } else if name.chars().any(char::is_control) {
        "it contains a control character"
    } else {
        return Ok(());
    };
    Err(LibraryError::BadName { name: name.to_string(), reason })
}

#[cfg(test)]
pub(crate) mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    /// A fresh directory under the system's temporary directory, removed on drop.
    pub(crate) struct TempDir(pub PathBuf);

    impl TempDir {
        pub(crate) fn new(test: &str) -> Self {
            use std::sync::atomic::{AtomicU32, Ordering};
            static COUNTER: AtomicU32 = AtomicU32::new(0);
            let dir = std::env::temp_dir().join(format!(
                "kvnc-media-{test}-{}-{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// root/media with images, root/outside.iso beside it.
    fn library(test: &str) -> (TempDir, MediaLibrary) {
        let root = TempDir::new(test);
        let media = root.0.join("media");
        fs::create_dir(&media).unwrap();
        fs::write(media.join("debian.iso"), vec![1; 4096]).unwrap();
        fs::write(media.join("disk.img"), vec![2; 1024]).unwrap();
        fs::create_dir(media.join("sub")).unwrap();
        fs::write(media.join("sub").join("nested.img"), vec![3; 512]).unwrap();
        fs::write(root.0.join("outside.iso"), vec![4; 100]).unwrap();
        (root, MediaLibrary::new(media))
    }

    #[test]
    fn lists_regular_files_sorted_with_sizes() {
        let (root, library) = library("list");
        let media = library.dir().to_path_buf();
        symlink("disk.img", media.join("alias.img")).unwrap();
        symlink(root.0.join("outside.iso"), media.join("escape.iso")).unwrap();
        symlink("missing", media.join("dangling.img")).unwrap();
        let names: Vec<(String, u64)> =
            library.list().unwrap().into_iter().map(|image| (image.name, image.size_bytes)).collect();
        assert_eq!(
            names,
            [("alias.img".to_string(), 1024), ("debian.iso".to_string(), 4096), ("disk.img".to_string(), 1024)]
        );
    }

    #[test]
    fn resolves_plain_names_to_canonical_paths() {
        let (_root, library) = library("resolve");
        let canonical = library.dir().canonicalize().unwrap();
        assert_eq!(library.resolve("debian.iso").unwrap(), canonical.join("debian.iso"));
        // Through a relative spelling of the directory, the answer is still absolute and clean.
        let dotted = MediaLibrary::new(library.dir().join("sub").join(".."));
        assert_eq!(dotted.resolve("disk.img").unwrap(), canonical.join("disk.img"));
        assert!(dotted.resolve("disk.img").unwrap().is_absolute());
    }

    #[test]
    fn refuses_names_that_are_not_plain_file_names() {
        let (_root, library) = library("names");
        for name in ["", ".", "..", "../outside.iso", "sub/nested.img", "/etc/passwd", "a\0b", "a\nb"] {
            let error = library.resolve(name).unwrap_err();
            assert!(matches!(error, LibraryError::BadName { .. }), "{name:?}: {error}");
        }
        // ".." inside a name is just a name.
        assert!(matches!(library.resolve("a..b").unwrap_err(), LibraryError::NotFound { .. }));
    }

    #[test]
    fn follows_symlinks_inside_and_refuses_those_leading_out() {
        let (root, library) = library("symlinks");
        let media = library.dir().to_path_buf();
        let canonical = media.canonicalize().unwrap();
        symlink("disk.img", media.join("alias.img")).unwrap();
        symlink(media.join("sub").join("nested.img"), media.join("nested-link.img")).unwrap();
        symlink(root.0.join("outside.iso"), media.join("escape.iso")).unwrap();
        symlink("../outside.iso", media.join("relative-escape.iso")).unwrap();
        symlink("/etc/passwd", media.join("passwd")).unwrap();
        // A sibling directory whose name starts like the media directory's.
        let sibling = root.0.join("media-evil");
        fs::create_dir(&sibling).unwrap();
        fs::write(sibling.join("x.iso"), b"x").unwrap();
        symlink(sibling.join("x.iso"), media.join("prefix-escape.iso")).unwrap();
        symlink("missing", media.join("dangling.img")).unwrap();
        symlink("sub", media.join("dir-link")).unwrap();

        assert_eq!(library.resolve("alias.img").unwrap(), canonical.join("disk.img"));
        assert_eq!(library.resolve("nested-link.img").unwrap(), canonical.join("sub").join("nested.img"));
        for name in ["escape.iso", "relative-escape.iso", "passwd", "prefix-escape.iso"] {
            let error = library.resolve(name).unwrap_err();
            assert!(matches!(error, LibraryError::OutsideDirectory { .. }), "{name}: {error}");
            assert!(error.to_string().contains("outside the media directory"), "{error}");
        }
        assert!(matches!(library.resolve("dangling.img").unwrap_err(), LibraryError::NotFound { .. }));
        assert!(matches!(library.resolve("dir-link").unwrap_err(), LibraryError::NotRegularFile { .. }));
        assert!(matches!(library.resolve("sub").unwrap_err(), LibraryError::NotRegularFile { .. }));
    }

    #[test]
    fn a_media_directory_that_is_a_symlink_works_and_escapes_are_judged_by_its_target() {
        let (root, library) = library("dir-symlink");
        let link = root.0.join("media-link");
        symlink(library.dir(), &link).unwrap();
        let through_link = MediaLibrary::new(&link);
        let canonical = library.dir().canonicalize().unwrap();
        assert_eq!(through_link.resolve("debian.iso").unwrap(), canonical.join("debian.iso"));
        assert_eq!(through_link.list().unwrap().len(), 2);
    }

    #[test]
    fn missing_things_say_what_is_missing() {
        let (root, library) = library("missing");
        let error = library.resolve("nope.iso").unwrap_err();
        assert!(matches!(error, LibraryError::NotFound { .. }));
        assert!(error.to_string().contains("no image \"nope.iso\""), "{error}");
        let absent = MediaLibrary::new(root.0.join("absent"));
        let error = absent.list().unwrap_err();
        assert!(matches!(error, LibraryError::Directory { .. }), "{error}");
        assert!(error.to_string().contains("absent"), "{error}");
        let file_as_dir = MediaLibrary::new(root.0.join("outside.iso"));
        assert!(matches!(file_as_dir.resolve("x").unwrap_err(), LibraryError::Directory { .. }));
    }

    #[test]
    fn attached_paths_map_back_to_names() {
        let (root, library) = library("name-of");
        let media = library.dir().to_path_buf();
        let canonical = media.canonicalize().unwrap();
        symlink("sub/nested.img", media.join("nested-link.img")).unwrap();
        assert_eq!(library.name_of(&canonical.join("debian.iso")).as_deref(), Some("debian.iso"));
        // A file reached through a symlink is known by that symlink's name.
        assert_eq!(library.name_of(&canonical.join("sub").join("nested.img")).as_deref(), Some("nested-link.img"));
        assert_eq!(library.name_of(&root.0.join("outside.iso").canonicalize().unwrap()), None);
        assert_eq!(library.name_of(Path::new("/run/gone.iso (deleted)")), None);
    }
}
