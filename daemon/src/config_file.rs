//! Reading the configuration: the file named by `-f` (with its `include`s) or the embedded
//! default, parsed by the core.

use std::path::{Path, PathBuf};

use petrel_core::config::{self, Config, ParseOptions, SourceLoader};

/// The embedded default configuration, used when no `-f` is given.
pub const DEFAULT_CONFIG: &str = include_str!("default.conf");

/// The name under which the embedded default is reported in messages.
pub const DEFAULT_NAME: &str = "<default configuration>";

/// Reads included files from disk; relative paths are taken from the main file's folder.
#[derive(Debug)]
struct FsLoader {
    base: PathBuf,
}

impl SourceLoader for FsLoader {
    fn load(&self, path: &str) -> Result<String, String> {
        std::fs::read_to_string(self.base.join(path)).map_err(|e| e.to_string())
    }
}

/// Why the configuration could not be loaded, ready to print.
#[derive(Debug)]
pub struct LoadError(pub String);

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Loads `path` (or the embedded default when `None`) with the `-D NAME=VALUE` macros.
pub fn load(path: Option<&Path>, macros: &[String]) -> Result<Config, LoadError> {
    let (name, text, base) = match path {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .map_err(|e| LoadError(format!("{}: {e}", p.display())))?;
            let base = p.parent().map(Path::to_path_buf).unwrap_or_default();
            (p.display().to_string(), text, base)
        }
        None => (
            DEFAULT_NAME.to_owned(),
            DEFAULT_CONFIG.to_owned(),
            PathBuf::from("."),
        ),
    };
    let loader = FsLoader { base };
    let mut options = ParseOptions::with_loader(&loader);
    for m in macros {
        options
            .define(m)
            .map_err(|e| LoadError(format!("-D {m}: {e}")))?;
    }
    config::parse(&name, &text, &options).map_err(|errors| LoadError(errors.to_string()))
}
