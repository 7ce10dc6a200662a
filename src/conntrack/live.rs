//! Reading this machine's conntrack table and counters, and finding the
//! process that owns a local connection.
//!
//! Only reads. When `/proc/net/nf_conntrack` does not exist (kernels built
//! without `CONFIG_NF_CONNTRACK_PROCFS`) the `conntrack -L` command is tried.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::Command;

use serde::Serialize;

use super::{Entry, Fill};

/// Live table.
pub const PROC_TABLE: &str = "/proc/net/nf_conntrack";
/// Live per-CPU counters.
pub const PROC_STAT: &str = "/proc/net/stat/nf_conntrack";
/// Current entry count.
pub const PROC_COUNT: &str = "/proc/sys/net/netfilter/nf_conntrack_count";
/// Table size limit.
pub const PROC_MAX: &str = "/proc/sys/net/netfilter/nf_conntrack_max";
/// Size of the conntrack hash table.
pub const PROC_BUCKETS: &str = "/proc/sys/net/netfilter/nf_conntrack_buckets";

/// Why live reading failed, in plain words.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// The conntrack module is not loaded.
    #[error(
        "{path} does not exist: connection tracking is not active on this system (the nf_conntrack module is not loaded, or nothing uses it yet); load it with `modprobe nf_conntrack`, or pass a saved file"
    )]
    NoModule {
        /// Path tried.
        path: String,
    },
    /// Not allowed.
    #[error(
        "{path}: permission denied; reading the conntrack table needs root (CAP_NET_ADMIN): run with sudo, or save it first with `sudo conntrack -L > ct.txt` and pass the file"
    )]
    Permission {
        /// Path tried.
        path: String,
    },
    /// Any other failure.
    #[error("{path}: {source}")]
    Io {
        /// Path tried.
        path: String,
        /// The error.
        source: std::io::Error,
    },
}

fn read(path: &str) -> Result<Vec<u8>, LiveError> {
    std::fs::read(path).map_err(|source| match source.kind() {
        ErrorKind::NotFound => LiveError::NoModule { path: path.into() },
        ErrorKind::PermissionDenied => LiveError::Permission { path: path.into() },
        _ => LiveError::Io {
            path: path.into(),
            source,
        },
    })
}

/// A text read from the live system and the name to show for it.
#[derive(Debug, Clone)]
pub struct LiveText {
    /// Where it came from (`/proc/net/nf_conntrack` or `conntrack -L`).
    pub name: String,
    /// The raw text.
    pub bytes: Vec<u8>,
}

/// Reads the live table: `/proc/net/nf_conntrack`, else `conntrack -L -o extended`.
pub fn read_table() -> Result<LiveText, LiveError> {
    match read(PROC_TABLE) {
        Ok(bytes) => Ok(LiveText {
            name: PROC_TABLE.into(),
            bytes,
        }),
        Err(LiveError::NoModule { path }) if Path::new(PROC_COUNT).exists() => {
            // Module loaded, proc file compiled out: ask the tool instead.
            match Command::new("conntrack")
                .args(["-L", "-o", "extended"])
                .output()
            {
                Ok(o) if o.status.success() => Ok(LiveText {
                    name: "conntrack -L -o extended".into(),
                    bytes: o.stdout,
                }),
                Ok(o) if String::from_utf8_lossy(&o.stderr).contains("ermission") => {
                    Err(LiveError::Permission { path })
                }
                _ => Err(LiveError::NoModule { path }),
            }
        }
        Err(e) => Err(e),
    }
}

/// Reads the live per-CPU counters.
pub fn read_stats() -> Result<LiveText, LiveError> {
    read(PROC_STAT).map(|bytes| LiveText {
        name: PROC_STAT.into(),
        bytes,
    })
}

/// Reads `nf_conntrack_count`, `nf_conntrack_max` and `nf_conntrack_buckets`.
pub fn read_fill() -> Result<Fill, LiveError> {
    let num = |p: &str| -> Result<u64, LiveError> {
        let b = read(p)?;
        String::from_utf8_lossy(&b)
            .trim()
            .parse()
            .map_err(|_| LiveError::Io {
                path: p.into(),
                source: std::io::Error::new(ErrorKind::InvalidData, "not a number"),
            })
    };
    Ok(Fill {
        count: num(PROC_COUNT)?,
        max: num(PROC_MAX)?,
        buckets: num(PROC_BUCKETS).ok(),
    })
}

/// A process holding a socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Owner {
    /// Process id.
    pub pid: i32,
    /// Command name (`/proc/PID/comm`).
    pub command: String,
}

/// Local sockets of this network namespace and their owners, to name the
/// process behind a connection that starts or ends on this host.
#[derive(Debug, Clone, Default)]
pub struct Owners {
    /// (protocol, local address) -> owner.
    by_local: HashMap<(u8, SocketAddr), Owner>,
}

impl Owners {
    /// Reads `/proc/net/{tcp,tcp6,udp,udp6}` and every process's fds.
    /// Processes that cannot be read (other users without root) are skipped.
    pub fn read() -> Owners {
        let mut inode_owner: HashMap<u64, Owner> = HashMap::new();
        if let Ok(all) = procfs::process::all_processes() {
            for p in all.flatten() {
                let command = p.stat().map(|s| s.comm).unwrap_or_default();
                let Ok(fds) = p.fd() else { continue };
                for fd in fds.flatten() {
                    if let procfs::process::FDTarget::Socket(inode) = fd.target {
                        inode_owner.entry(inode).or_insert_with(|| Owner {
                            pid: p.pid,
                            command: command.clone(),
                        });
                    }
                }
            }
        }
        let mut by_local = HashMap::new();
        let mut add = |proto: u8, local: SocketAddr, inode: u64| {
            if let Some(o) = inode_owner.get(&inode) {
                by_local.entry((proto, local)).or_insert_with(|| o.clone());
            }
        };
        for t in [procfs::net::tcp(), procfs::net::tcp6()]
            .into_iter()
            .flatten()
        {
            for s in t {
                add(6, s.local_address, s.inode);
            }
        }
        for t in [procfs::net::udp(), procfs::net::udp6()]
            .into_iter()
            .flatten()
        {
            for s in t {
                add(17, s.local_address, s.inode);
            }
        }
        Owners { by_local }
    }

    /// Number of sockets with a known owner.
    pub fn len(&self) -> usize {
        self.by_local.len()
    }

    /// True when no owner is known.
    pub fn is_empty(&self) -> bool {
        self.by_local.is_empty()
    }

    fn lookup(&self, proto: u8, addr: IpAddr, port: u16) -> Option<&Owner> {
        let any = |a: IpAddr| match a {
            IpAddr::V4(_) => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
        };
        self.by_local
            .get(&(proto, SocketAddr::new(addr, port)))
            .or_else(|| {
                self.by_local
                    .get(&(proto, SocketAddr::new(any(addr), port)))
            })
    }

    /// The local process at either end of the entry: the client (original
    /// source) or the server (reply source, after DNAT).
    pub fn owner_of(&self, e: &Entry) -> Option<&Owner> {
        if !matches!(e.proto, 6 | 17) {
            return None;
        }
        self.lookup(e.proto, e.orig.src, e.orig.sport)
            .or_else(|| self.lookup(e.proto, e.reply.src, e.reply.sport))
    }
}
