//! Where rules come from: a file, standard input, or the running system.
//!
//! Live reading runs `iptables-save -c` and `ip6tables-save -c` directly
//! (no shell) and only reads.

use std::io::Read;
use std::path::PathBuf;
use std::process::Command;

/// An input the user named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A file path.
    Path(PathBuf),
    /// `-`
    Stdin,
    /// `--live`
    Live,
}

impl Source {
    /// `-` is stdin, anything else a path.
    pub fn from_arg(arg: &str) -> Source {
        if arg == "-" {
            Source::Stdin
        } else {
            Source::Path(arg.into())
        }
    }
}

/// One text read from a source, with the name used in messages.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// `FILE`, `<stdin>` or `live: iptables-save -c`.
    pub name: String,
    /// The raw bytes.
    pub bytes: Vec<u8>,
}

/// Reading failed before parsing could start.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// A file or stdin could not be read.
    #[error("{name}: {source}")]
    Io {
        /// What was read.
        name: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// Live reading failed.
    #[error("{0}")]
    Live(String),
}

/// Reads one source; `--live` gives the IPv4 and (when present) IPv6 rules.
pub fn read_source(src: &Source) -> Result<Vec<Loaded>, InputError> {
    match src {
        Source::Path(p) => {
            let name = p.display().to_string();
            if p.is_dir() {
                return Err(InputError::Io {
                    name,
                    source: std::io::Error::other("is a directory, not a file"),
                });
            }
            let bytes = std::fs::read(p).map_err(|source| InputError::Io {
                name: name.clone(),
                source,
            })?;
            Ok(vec![Loaded { name, bytes }])
        }
        Source::Stdin => {
            let mut bytes = Vec::new();
            std::io::stdin()
                .lock()
                .read_to_end(&mut bytes)
                .map_err(|source| InputError::Io {
                    name: "<stdin>".into(),
                    source,
                })?;
            Ok(vec![Loaded {
                name: "<stdin>".into(),
                bytes,
            }])
        }
        Source::Live => read_live(),
    }
}

const NO_ROOT_HELP: &str = "reading the live rules needs root: run it with sudo, or save them \
first with `sudo iptables-save -c > rules.txt` and pass the file";

fn run_save(cmd: &str) -> Result<Option<Loaded>, String> {
    let out = match Command::new(cmd).arg("-c").output() {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("could not run {cmd}: {e}")),
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        let lower = stderr.to_lowercase();
        if lower.contains("permission denied") || lower.contains("must be root") {
            return Err(format!("{cmd} -c: permission denied; {NO_ROOT_HELP}"));
        }
        return Err(format!(
            "{cmd} -c failed ({}): {}",
            out.status,
            stderr.trim()
        ));
    }
    Ok(Some(Loaded {
        name: format!("live: {cmd} -c"),
        bytes: out.stdout,
    }))
}

/// Runs `iptables-save -c` and `ip6tables-save -c`.
pub fn read_live() -> Result<Vec<Loaded>, InputError> {
    let mut found = Vec::new();
    for cmd in ["iptables-save", "ip6tables-save"] {
        if let Some(l) = run_save(cmd).map_err(InputError::Live)? {
            // An empty dump (no tables loaded) is still a valid answer.
            if !l.bytes.iter().all(u8::is_ascii_whitespace) {
                found.push(l);
            }
        }
    }
    if found.is_empty() {
        return Err(InputError::Live(
            "no rules to read: iptables-save is not installed (Debian/Ubuntu package `iptables`) \
             or no table is loaded on this system"
                .into(),
        ));
    }
    Ok(found)
}
