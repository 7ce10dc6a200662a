//! Where rules come from: a file, standard input, or the running system.
//!
//! Live reading runs `iptables-save -c`, `ip6tables-save -c` and (where
//! nft is installed) `nft -j list ruleset` directly
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

/// Largest input read unless the caller raises it: far above real dumps
/// (a 100,000-service kube-proxy node saves about 170 MB).
pub const DEFAULT_MAX_INPUT: u64 = 1 << 30;

/// How much of the input is looked at to tell text from binary data.
const SNIFF_BYTES: usize = 64 * 1024;

/// Reading failed before parsing could start.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// A file or stdin could not be read.
    #[error("{name}: {error}")]
    Io {
        /// What was read.
        name: String,
        /// Why it failed (shown in the message, not chained again).
        error: std::io::Error,
    },
    /// A directory was named.
    #[error("{name}: is a directory, not a file")]
    Directory {
        /// What was named.
        name: String,
    },
    /// The first bytes are not text.
    #[error(
        "{name}: this is binary data ({why} at offset {offset}), not iptables-save, iptables -S or conntrack text"
    )]
    Binary {
        /// What was read.
        name: String,
        /// What gave it away.
        why: &'static str,
        /// Byte offset of the first bad byte.
        offset: usize,
    },
    /// More than the size limit (an endless stream ends here too).
    #[error(
        "{name}: the input is larger than {} ({limit} bytes){}; raise the limit with --max-input-size if this is really a dump",
        human_size(*limit),
        if *endless { ", and does not end" } else { "" }
    )]
    TooLarge {
        /// What was read.
        name: String,
        /// The limit in bytes.
        limit: u64,
        /// It is a stream that was cut off rather than a file of known size.
        endless: bool,
    },
    /// Live reading failed.
    #[error("{0}")]
    Live(String),
}

/// `1 GiB`, `200 MiB`, `512 KiB`, `100 bytes`.
pub fn human_size(n: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (size, unit) in UNITS {
        if n >= size {
            return if n.is_multiple_of(size) {
                format!("{} {unit}", n / size)
            } else {
                format!("{:.1} {unit}", n as f64 / size as f64)
            };
        }
    }
    format!("{n} bytes")
}

/// Parses `1G`, `512M`, `64K`, `1GiB`, `100000` (bytes).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let digits = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(digits);
    let num: f64 = num
        .parse()
        .map_err(|_| format!("not a size: {s:?} (examples: 2G, 500M, 100000)"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        _ => return Err(format!("unknown size unit in {s:?} (use K, M, G or T)")),
    };
    let bytes = num * mult as f64;
    if !bytes.is_finite() || bytes < 1.0 || bytes > u64::MAX as f64 {
        return Err(format!("size out of range: {s:?}"));
    }
    Ok(bytes as u64)
}

/// Why the first bytes of an input are not text, and where: a NUL byte,
/// or many bytes that are neither UTF-8 text nor usual whitespace.
pub fn sniff_binary(head: &[u8]) -> Option<(&'static str, usize)> {
    let head = &head[..head.len().min(SNIFF_BYTES)];
    if let Some(at) = memchr::memchr(0, head) {
        return Some(("a NUL byte", at));
    }
    let text = String::from_utf8_lossy(head);
    let mut total = 0usize;
    let mut bad = 0usize;
    let mut first_bad = None;
    let mut offset = 0usize;
    for c in text.chars() {
        total += 1;
        let odd = c == '\u{FFFD}' || (c.is_control() && !matches!(c, '\n' | '\r' | '\t' | '\x0c'));
        if odd {
            bad += 1;
            first_bad.get_or_insert(offset);
        }
        offset += if c == '\u{FFFD}' { 1 } else { c.len_utf8() };
    }
    // A stray bad byte in a text dump is a warning for the parser; this
    // many means it is not text at all.
    (bad * 20 > total.max(1)).then(|| {
        (
            "mostly bytes that are not text, starting",
            first_bad.unwrap_or(0),
        )
    })
}

/// Reads at most `limit` bytes of `r`, refusing binary data from its first
/// bytes and anything longer than the limit, so that neither `/dev/zero`
/// nor an endless pipe is read without bound.
pub fn read_bounded(
    mut r: impl Read,
    name: &str,
    limit: u64,
    known_len: Option<u64>,
) -> Result<Vec<u8>, InputError> {
    if let Some(len) = known_len
        && len > limit
    {
        return Err(InputError::TooLarge {
            name: name.into(),
            limit,
            endless: false,
        });
    }
    let io = |error| InputError::Io {
        name: name.into(),
        error,
    };
    let mut bytes = Vec::with_capacity(
        known_len
            .map_or(SNIFF_BYTES, |l| l as usize + 1)
            .min(limit as usize + 1),
    );
    // The first bytes alone decide whether this is text: read them, and
    // look at them before reading on.
    let too_large = || InputError::TooLarge {
        name: name.into(),
        limit,
        endless: known_len.is_none(),
    };
    (&mut r)
        .take((SNIFF_BYTES as u64).min(limit + 1))
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > limit {
        return Err(too_large());
    }
    if let Some((why, offset)) = sniff_binary(&bytes) {
        return Err(InputError::Binary {
            name: name.into(),
            why,
            offset,
        });
    }
    // The rest straight into the buffer (no copy through a smaller one),
    // at most one byte past the limit.
    let room = (limit + 1).saturating_sub(bytes.len() as u64);
    (&mut r).take(room).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > limit {
        return Err(too_large());
    }
    Ok(bytes)
}

/// Reads a file with [`read_bounded`]; a directory is refused by name.
pub fn read_file_bounded(p: &std::path::Path, limit: u64) -> Result<Vec<u8>, InputError> {
    let name = p.display().to_string();
    let io = |error| InputError::Io {
        name: name.clone(),
        error,
    };
    let f = std::fs::File::open(p).map_err(io)?;
    let meta = f.metadata().map_err(io)?;
    if meta.is_dir() {
        return Err(InputError::Directory { name });
    }
    // Only a regular file's length is known in advance (not /dev/zero's).
    let known = meta.is_file().then_some(meta.len());
    read_bounded(f, &name, limit, known)
}

/// Reads one source; `--live` gives the IPv4 and (when present) IPv6 rules.
pub fn read_source(src: &Source) -> Result<Vec<Loaded>, InputError> {
    read_source_limited(src, DEFAULT_MAX_INPUT)
}

/// Like [`read_source`], with inputs over `limit` bytes refused.
pub fn read_source_limited(src: &Source, limit: u64) -> Result<Vec<Loaded>, InputError> {
    match src {
        Source::Path(p) => {
            let bytes = read_file_bounded(p, limit)?;
            Ok(vec![Loaded {
                name: p.display().to_string(),
                bytes,
            }])
        }
        Source::Stdin => {
            let name = "<stdin>";
            let bytes = read_bounded(std::io::stdin().lock(), name, limit, None)?;
            Ok(vec![Loaded {
                name: name.into(),
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

/// Runs `nft -j list ruleset` (read-only) when nft is installed; `None`
/// when it is not, or when the ruleset holds no table.
fn run_nft_json() -> Result<Option<Loaded>, String> {
    let out = match Command::new("nft").args(["-j", "list", "ruleset"]).output() {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("could not run nft: {e}")),
    };
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let lower = stderr.to_lowercase();
        if lower.contains("permission denied") || lower.contains("operation not permitted") {
            return Err(format!(
                "nft -j list ruleset: permission denied; {NO_ROOT_HELP}"
            ));
        }
        return Err(format!(
            "nft -j list ruleset failed ({}): {}",
            out.status,
            stderr.trim()
        ));
    }
    let has_table = memchr::memmem::find(&out.stdout, b"\"table\"").is_some();
    Ok(has_table.then(|| Loaded {
        name: "live: nft -j list ruleset".into(),
        bytes: out.stdout,
    }))
}

/// Runs `iptables-save -c` and `ip6tables-save -c`, and `nft -j list
/// ruleset` where nft is installed.
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
    if let Some(mut l) = run_nft_json().map_err(InputError::Live)? {
        // iptables-nft's tables are in the nft listing too: they are read
        // once, from iptables-save.
        let owned = iptables_nft_tables(&found);
        match without_tables(&l.bytes, &owned) {
            Ok(Some(rest)) => {
                l.bytes = rest;
                found.push(l);
            }
            Ok(None) => {}
            // Not the JSON nft prints: read it as it is, and say what is wrong there.
            Err(_) => found.push(l),
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

/// The tables iptables-nft owns, as (nft family, table name): the tables
/// of every `iptables-save` (`ip`) or `ip6tables-save` (`ip6`) output
/// made by the nf_tables backend (its header says `(nf_tables)`). The
/// legacy backend's tables are not in the nft listing, so a native nft
/// table of the same name is not one of them.
pub fn iptables_nft_tables(saves: &[Loaded]) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    for l in saves {
        let text = String::from_utf8_lossy(&l.bytes);
        let nf_tables = text
            .lines()
            .take_while(|line| !line.starts_with('*'))
            .any(|line| line.starts_with("# Generated by") && line.contains("(nf_tables)"));
        if !nf_tables {
            continue;
        }
        let family = if l.name.contains("ip6tables") {
            "ip6"
        } else {
            "ip"
        };
        for line in text.lines() {
            if let Some(t) = line.strip_prefix('*') {
                out.push((family, t.trim().to_string()));
            }
        }
    }
    out
}

/// `nft -j list ruleset` output without the tables `owned` (family,
/// name) and everything in them; `None` when no table is left.
pub fn without_tables(
    json: &[u8],
    owned: &[(&str, String)],
) -> Result<Option<Vec<u8>>, serde_json::Error> {
    let mut v: serde_json::Value = serde_json::from_slice(json)?;
    if owned.is_empty() {
        return Ok(Some(json.to_vec()));
    }
    let Some(items) = v.get_mut("nftables").and_then(|x| x.as_array_mut()) else {
        return Ok(Some(json.to_vec()));
    };
    // Every object but the metainfo names its table: a table by `name`,
    // what is in one by `table`.
    let is_owned = |item: &serde_json::Value| {
        let Some((kind, o)) = item.as_object().and_then(|m| m.iter().next()) else {
            return false;
        };
        let family = o.get("family").and_then(|f| f.as_str()).unwrap_or("");
        let key = if kind == "table" { "name" } else { "table" };
        let table = o.get(key).and_then(|t| t.as_str()).unwrap_or("");
        owned.iter().any(|(f, t)| *f == family && t == table)
    };
    items.retain(|it| !is_owned(it));
    if !items.iter().any(|it| it.get("table").is_some()) {
        return Ok(None);
    }
    serde_json::to_vec(&v).map(Some)
}

#[cfg(test)]
mod live_tests {
    use super::*;

    /// A mixed host captured in a namespace: iptables-nft rules
    /// (`tests/kernel/nft/mixed-iptables.rules`, nat, filter and mangle)
    /// beside a native `inet native` table.
    const SAVE: &str = include_str!("../tests/fixtures/mixed-host.iptables-save");
    const LISTING: &str = include_str!("../tests/fixtures/mixed-host.nft.json");

    fn save(name: &str, text: &str) -> Loaded {
        Loaded {
            name: name.into(),
            bytes: text.as_bytes().to_vec(),
        }
    }

    fn tables(json: &[u8]) -> Vec<(String, String)> {
        let v: serde_json::Value = serde_json::from_slice(json).unwrap();
        v["nftables"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|i| i.get("table"))
            .map(|t| {
                (
                    t["family"].as_str().unwrap().to_string(),
                    t["name"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    #[test]
    fn live_reads_the_iptables_nft_tables_once() {
        let saves = [save("live: iptables-save -c", SAVE)];
        let owned = iptables_nft_tables(&saves);
        assert_eq!(
            owned,
            [
                ("ip", "mangle".to_string()),
                ("ip", "filter".to_string()),
                ("ip", "nat".to_string())
            ]
        );
        assert_eq!(tables(LISTING.as_bytes()).len(), 4);
        let rest = without_tables(LISTING.as_bytes(), &owned)
            .unwrap()
            .expect("the native table is left");
        assert_eq!(tables(&rest), [("inet".to_string(), "native".to_string())]);
        // Nothing of the iptables tables is left: no chain, no xt rule.
        let text = String::from_utf8(rest).unwrap();
        assert!(!text.contains("\"xt\""), "{text}");
        let parsed = crate::nft::parse_nft(&text, &crate::ParseOptions::strict("live")).unwrap();
        assert_eq!(parsed.ruleset.nft.tables.len(), 1);
        assert_eq!(parsed.ruleset.nft.tables[0].chains.len(), 7);
    }

    #[test]
    fn legacy_tables_do_not_hide_native_ones_of_the_same_name() {
        // iptables-legacy's tables are not in the nft listing: an nft
        // `table ip filter` there is a native one.
        let legacy = SAVE.replace("(nf_tables)", "(legacy)");
        let owned = iptables_nft_tables(&[save("live: iptables-save -c", &legacy)]);
        assert!(owned.is_empty());
        let kept = without_tables(LISTING.as_bytes(), &owned).unwrap().unwrap();
        assert_eq!(tables(&kept).len(), 4);
        // ip6tables-save's tables are ip6 ones: the ip tables stay.
        let owned = iptables_nft_tables(&[save("live: ip6tables-save -c", SAVE)]);
        assert!(owned.iter().all(|(f, _)| *f == "ip6"));
        let kept = without_tables(LISTING.as_bytes(), &owned).unwrap().unwrap();
        assert_eq!(tables(&kept).len(), 4);
    }

    #[test]
    fn a_listing_of_iptables_nft_tables_only_is_dropped() {
        let saves = [save("live: iptables-save -c", SAVE)];
        let mut owned = iptables_nft_tables(&saves);
        owned.push(("inet", "native".into()));
        assert_eq!(without_tables(LISTING.as_bytes(), &owned).unwrap(), None);
    }
}
